#!/usr/bin/env bash
# Everything CUDA, in one command on a lent GPU machine: .ci/gpu-check.sh OUT_DIR
#
# Writes three files (a device call brings back at most eight): OUT_DIR/gpu-check.json (every
# step: name, status, detail, seconds), OUT_DIR/gpu-check.txt (the same, one line a step) and
# OUT_DIR/gpu-check-details.tar.gz (each step's log, the records and profiles it compared).
# Any step that fails or cannot run makes the script fail (exit 1); nothing is skipped quietly.
# On a machine without a GPU it stops at the first step, with exit 2 and a line saying so.
#
# The binary: BLOCKDROP_BIN (a `cargo build --release --features cuda` build carried there),
# else it is built here with cargo (after `source .../env.sh` of .ci/cuda-toolchain.sh, or with
# the machine's own CUDA toolkit on PATH). The random R110/R101 models for the profiles need
# the example `make_untrained_default` (BLOCKDROP_MAKE_MODEL, else built with cargo too).
#
# Steps:
#   gpu          nvidia-smi sees a GPU (driver and name recorded)
#   build        the binary (and the model maker) with --features cuda, timed
#   probe        `eval --device "$device"` starts: the driver answers and a GPU is counted
#   parity       R32_C10 reference checkpoint on the CIFAR fixture, on CUDA: logits within 1e-4
#                (relative, over all logits) of PyTorch's, identical policies, the four lines
#   default      the bundled default on CUDA gives the CPU's four lines on its sample
#   train        one small finetune epoch on CUDA and on the CPU, same seed: metrics agree
#   profile-*    per-block profiles on CUDA, timed with CUDA events: the default at batch 1
#                and 64, a random R110_C10, a random R101_ImgNet on synthetic 224px images
#   skip-vs-full eval wall time at the default threshold against threshold 0 (every block),
#                batch 1 and 64
#
# GPU_CHECK_DEVICE=cpu runs every step on the CPU instead (with a fake nvidia-smi on PATH), to
# test the script itself on a machine without a GPU; the clock expected is then the wall clock.
set -uo pipefail

out="${1:?usage: .ci/gpu-check.sh OUT_DIR}"
device="${GPU_CHECK_DEVICE:-cuda}"
case "$device" in
  cuda) clock="CUDA events" ;;
  cpu) clock="wall clock" ;;
  *) echo "gpu-check: GPU_CHECK_DEVICE is cuda or cpu, not $device" >&2; exit 2 ;;
esac
mkdir -p "$out"
results="$(cd "$out" && pwd)"
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Every step's files go here, packed into one archive at the end.
out="$work/details"
mkdir -p "$out"
steps="$out/steps.tsv"
: > "$steps"
failed=0

# record NAME STATUS SECONDS DETAIL
record() {
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$steps"
  printf '%-16s %-5s %6ss  %s\n' "$1" "$2" "$3" "$4"
  [ "$2" = ok ] || failed=1
}

finish() {
  tar -czf "$results/gpu-check-details.tar.gz" -C "$out" . || true
  python3 - "$steps" "$results" <<'EOF'
import json, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
steps = [{"name": n, "status": s, "seconds": float(t), "detail": d} for n, s, t, d in rows]
ok = all(s["status"] == "ok" for s in steps)
json.dump({"ok": ok, "steps": steps}, open(sys.argv[2] + "/gpu-check.json", "w"), indent=2)
with open(sys.argv[2] + "/gpu-check.txt", "w") as f:
    f.write(("all steps ok" if ok else "FAILED: a step failed or could not run") + "\n")
    for s in steps:
        f.write(f'{s["name"]:<16} {s["status"]:<5} {s["seconds"]:>7.1f}s  {s["detail"]}\n')
EOF
  exit "$1"
}

# run NAME COMMAND...: runs it, logs to $out/NAME.log, records ok or fail with its last line.
run() {
  local name="$1"; shift
  local start=$SECONDS status=ok
  "$@" > "$out/$name.log" 2>&1 || status=fail
  record "$name" "$status" "$((SECONDS - start))" "$(tail -1 "$out/$name.log")"
  [ "$status" = ok ]
}

# --- gpu: stop at once, exit 2, on a machine without one.
if ! command -v nvidia-smi > /dev/null || ! nvidia-smi -L > "$work/gpus" 2>&1 || ! grep -q GPU "$work/gpus"; then
  record gpu fail 0 "no NVIDIA GPU visible (nvidia-smi missing or lists none): run this on a GPU machine"
  echo "gpu-check: no GPU on this machine; nothing else was run" >&2
  python3 - "$steps" "$results" <<'EOF' || true
import json, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
json.dump({"ok": False, "steps": [{"name": n, "status": s, "seconds": float(t), "detail": d} for n, s, t, d in rows]}, open(sys.argv[2] + "/gpu-check.json", "w"), indent=2)
EOF
  exit 2
fi
record gpu ok 0 "$(head -1 "$work/gpus"); driver $(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1)"

# --- build (or the carried binary).
bin="${BLOCKDROP_BIN:-}"
maker="${BLOCKDROP_MAKE_MODEL:-}"
if [ -z "$bin" ] || [ -z "$maker" ]; then
  if ! command -v cargo > /dev/null; then
    record build fail 0 "no cargo here and BLOCKDROP_BIN/BLOCKDROP_MAKE_MODEL not both set: carry a --features cuda build"
    finish 1
  fi
  export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)}"
  run build cargo build --release --features cuda --bin blockdrop --example make_untrained_default || finish 1
  target="${CARGO_TARGET_DIR:-$repo/target}"
  bin="${bin:-$target/release/blockdrop}"
  maker="${maker:-$target/release/examples/make_untrained_default}"
else
  record build ok 0 "carried: $bin"
fi
"$bin" --version > "$out/version.txt" 2>&1 || { record build fail 0 "$bin does not start: $(tail -1 "$out/version.txt")"; finish 1; }

fixture="$repo/tests/fixtures"
sample="$repo/assets/fashion-mnist-sample"

# --- probe: the device opens.
run probe "$bin" eval --device "$device" --data "$sample" --limit 8 --no-baselines || finish 1

# --- parity against PyTorch's fixture.
parity() {
  "$bin" eval --device "$device" --model "$fixture/r32_c10.pth" --data "$fixture/cifar-10-batches-bin" \
    --logits --no-baselines --records "$out/parity-$device.parquet" > "$work/parity.out" || return 1
  python3 - "$out/parity-$device.parquet" "$fixture/r32_c10_expected.json" "$work/parity.out" <<'EOF'
import json, sys
import pyarrow.parquet as pq
got = pq.read_table(sys.argv[1]).to_pylist()
expected = json.load(open(sys.argv[2]))
ref = expected["records"]
assert len(got) == len(ref), f"{len(got)} records, the fixture has {len(ref)}"
num = den = 0.0
for g, r in zip(got, ref):
    assert g["policy"] == r["policy"], f'image {g["index"]}: policy {g["policy"]}, PyTorch {r["policy"]}'
    for a, b in zip(g["logits"], r["logits"]):
        num += (a - b) ** 2
        den += b * b
rel = (num / den) ** 0.5
lines = open(sys.argv[3]).read().splitlines()[:4]
assert lines == expected["summary"], f"four lines differ: {lines}"
assert rel < 1e-4, f"relative logit error {rel:.2e} ≥ 1e-4"
print(f"{len(got)} images: policies identical, four lines identical, logits rel. error {rel:.2e}")
EOF
}
run parity parity

# --- the default on CUDA gives the CPU's four lines.
same_lines() {
  "$bin" eval --device "$device" --data "$sample" --no-baselines > "$work/checked.out" &&
  "$bin" eval --device cpu --data "$sample" --no-baselines > "$work/cpu.out" &&
  head -4 "$work/checked.out" > "$work/checked.lines" && head -4 "$work/cpu.out" > "$work/cpu.lines" &&
  diff "$work/cpu.lines" "$work/checked.lines" && echo "four lines identical: $(head -1 "$work/checked.lines")"
}
run default same_lines

# --- a training epoch on CUDA against the CPU.
train_both() {
  local side on
  for side in reference checked; do
    on=cpu
    [ "$side" = checked ] && on="$device"
    "$bin" train finetune --from "$repo/assets/default.safetensors" --data "$sample" \
      --device "$on" --out "$work/train-$side" \
      --epochs 1 --images-per-epoch 256 --test-images 128 --batch-size 64 --seed 3 \
      > "$out/train-$side.log" 2>&1 || { echo "train on $on failed: $(tail -1 "$out/train-$side.log")"; return 1; }
    cp "$work/train-$side/metrics.csv" "$out/train-$side-metrics.csv"
  done
  python3 - "$out/train-reference-metrics.csv" "$out/train-checked-metrics.csv" "$device" <<'EOF'
import csv, sys
cpu, other = (list(csv.DictReader(open(p))) for p in sys.argv[1:3])
assert len(cpu) == len(other) == 1, (len(cpu), len(other))
worst = 0.0
for key, a in cpu[0].items():
    if key in ("images_per_s", "wall_s"):  # speed, not results
        continue
    try:
        a, b = float(a), float(other[0][key])
    except ValueError:
        continue
    worst = max(worst, abs(a - b) / max(abs(a), 1e-6))
assert worst < 1e-3, f"metrics differ by {worst:.2e} (relative)"
print(f"one finetune epoch: CPU and {sys.argv[3]} metrics within {worst:.1e}")
EOF
}
run train train_both

# --- profiles with CUDA events.
profile() {
  local name="$1"; shift
  "$bin" profile --device "$device" --out "$out/$name.json" "$@" > "$out/$name.txt" || return 1
  python3 - "$out/$name.json" "$clock" <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))
assert p["clock"].startswith(sys.argv[2]), f'timed by {p["clock"]}'
print(f'{p["config"]} batch {p["batch"]}: {p["end_to_end_us"]:.0f} µs end to end, stages sum {p["stage_sum_us"]:.0f} µs ({p["clock"]})')
EOF
}
run profile-b1 profile profile-b1 --data "$sample" --batch 1 --repeat 20
run profile-b64 profile profile-b64 --data "$sample" --batch 64 --repeat 10
if "$maker" "$work/r110.safetensors" R110_C10 > /dev/null; then
  run profile-r110 profile profile-r110 --model "$work/r110.safetensors" --data "$fixture/cifar-10-batches-bin" --batch 1 --images 8 --repeat 10
else
  record profile-r110 fail 0 "could not write a random R110_C10"
fi
python3 - "$work/imagenet" <<'EOF' || record images fail 0 "could not write synthetic 500x375 JPEGs (PIL)"
import os, sys, random
from PIL import Image
random.seed(1)
for i in range(64):
    d = os.path.join(sys.argv[1], "val", f"n{i % 8:08d}")
    os.makedirs(d, exist_ok=True)
    Image.effect_noise((500, 375), 64).convert("RGB").save(os.path.join(d, f"{i}.JPEG"))
EOF
if "$maker" "$work/r101.safetensors" R101_ImgNet > /dev/null; then
  run profile-r101 profile profile-r101 --model "$work/r101.safetensors" --data "$work/imagenet" --batch 1 --images 8 --repeat 10
else
  record profile-r101 fail 0 "could not write a random R101_ImgNet"
fi

# --- skip against full, batch 1 and 64 (whole eval, default model and sample).
seconds_of() {
  local start end
  start=$(date +%s%N)
  "$@" > /dev/null || return 1
  end=$(date +%s%N)
  echo "$(( (end - start) / 1000000 )) ms"
}
skip_vs_full() {
  local line="" t_skip t_full batch
  for batch in 1 64; do
    t_skip=$(seconds_of "$bin" eval --device "$device" --data "$sample" --no-baselines --batch "$batch") || return 1
    t_full=$(seconds_of "$bin" eval --device "$device" --data "$sample" --no-baselines --batch "$batch" --threshold 0) || return 1
    line="$line batch $batch: skip $t_skip, full $t_full;"
  done
  echo "whole eval of the sample on $device:$line"
}
run skip-vs-full skip_vs_full

finish "$failed"
