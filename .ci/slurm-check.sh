#!/usr/bin/env bash
# The Slurm examples on a real one-node cluster (examples/slurm/cluster.sh), as .ci/run runs
# them when it is root on Debian:
#   1. examples/slurm_eval.sh in 3 parts: the merged four lines and records equal one
#      unsharded `eval`;
#   2. preemption: a running array task is requeued partway through; it resumes its part, the
#      merge is the same, and no image is evaluated twice;
#   3. a failed part: one task fails for good; the merge job never runs, and the documented
#      retry (the same command again) completes it;
#   4. training: examples/slurm_train.sh's job is requeued mid-run; it saves, resumes and ends
#      with the metrics and weights of an uninterrupted run.
# The cluster comes down at the end, also when a step fails, and no process may be left.
#
#   .ci/slurm-check.sh [BLOCKDROP_BINARY]     (default target/release/blockdrop)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

if [ "$(id -u)" -ne 0 ] || [ ! -e /etc/debian_version ]; then
    echo "slurm check: SKIPPED: it brings a Slurm cluster up, which needs root on Debian (uid $(id -u))"
    exit 0
fi
bd=$(realpath "${1:-${CARGO_TARGET_DIR:-target}/release/blockdrop}")
[ -x "$bd" ] || { echo "slurm check: no blockdrop binary at $bd" >&2; exit 1; }
python=$(bash .ci/ci-venv.sh | tail -1)

work=$(mktemp -d /tmp/blockdrop-slurm-check.XXXXXX)
export BLOCKDROP_SLURM_DIR=$work/cluster
cluster=$repo/examples/slurm/cluster.sh
finish() {
    local status=$?
    "$cluster" down || status=1
    # Nothing of the cluster or of its jobs may outlive the check.
    local left
    left=$(pgrep -f "$work" || true)
    left="$left $(pgrep -x slurmstepd || true)"
    if [ -n "${left// /}" ]; then
        echo "slurm check: FAILED: processes left behind: $left" >&2
        ps -o pid,args -p "${left// /,}" >&2 || true
        status=1
    fi
    rm -rf "$work"
    [ $status -eq 0 ] && echo "slurm check: passed in ${SECONDS}s" || echo "slurm check: FAILED" >&2
    exit $status
}
trap finish EXIT
fail() { echo "slurm check: FAILED: $*" >&2; exit 1; }

"$cluster" up
export SLURM_CONF=$BLOCKDROP_SLURM_DIR/slurm.conf

# 40,000 images: the bundled CIFAR-10 sample's 1,000 test images, each linked 40 times, so a
# part runs long enough (some seconds on one CPU) to be requeued after it has saved.
model=$repo/assets/cifar10.safetensors
data=$work/data
for class in "$repo"/assets/cifar10-sample/test/*; do
    mkdir -p "$data/test/${class##*/}"
    for copy in $(seq 1 40); do
        for image in "$class"/*.jpg; do ln "$image" "$data/test/${class##*/}/${copy}_${image##*/}"; done
    done
done

echo "== the unsharded evaluation"
RAYON_NUM_THREADS=2 "$bd" eval --model "$model" --data "$data" --no-baselines \
    --records "$work/whole.parquet" > "$work/whole.out"
head -4 "$work/whole.out"

# Submits the sharded evaluation into $1 (3 parts, 1 CPU each); prints "ARRAY MERGE".
submit() {
    CPUS=1 BLOCKDROP=${2:-$bd} examples/slurm_eval.sh "$model" "$data" "$1" 3 | tail -1 | cut -d' ' -f2,4
}
# Waits until none of the jobs in $@ is queued or running (a requeued task's two-minute hold,
# Slurm's credential lifetime, is lifted at once).
wait_jobs() {
    local deadline=$((SECONDS + 600)) jobs
    jobs=$(IFS=,; echo "$*")
    while [ -n "$(squeue -h -j "$jobs" 2>/dev/null)" ]; do
        [ $SECONDS -lt $deadline ] || fail "jobs $jobs still queued after 600 s: $(squeue)"
        squeue -h -j "$jobs" -o "%i %r" | awk '$2 == "BeginTime" {print $1}' |
            while read -r held; do scontrol update JobId="$held" StartTime=now; done
        sleep 1
    done
}
# The merge in $1 printed the unsharded four lines, and its records equal the unsharded ones.
same_as_whole() {
    [ -s "$1/merge.out" ] || fail "$1: the merge job wrote nothing"
    diff <(head -4 "$work/whole.out") <(head -4 "$1/merge.out") || fail "$1: four lines differ"
    "$python" - "$work/whole.parquet" "$1/records.parquet" <<'PY' || fail "$1: records differ"
import sys
import pyarrow.compute as pc
import pyarrow.parquet as pq
whole, merged = (pq.read_table(p) for p in sys.argv[1:])
assert len(pc.unique(merged["index"])) == merged.num_rows, "an image evaluated twice"
assert merged.num_rows == whole.num_rows, f"{merged.num_rows} rows, not {whole.num_rows}"
assert merged.equals(whole), "the merged records differ from the unsharded ones"
print(f"records equal: {merged.num_rows} images, each once")
PY
}

echo "== 1. three parts and the merge"
read -r array merge < <(submit "$work/eval")
wait_jobs "$array" "$merge"
same_as_whole "$work/eval"

echo "== 2. a task requeued partway through"
read -r array merge < <(submit "$work/preempt")
deadline=$((SECONDS + 300))
# Part 1 has saved some batches (its file appears after about 5 s) and is still running.
until [ -e "$work/preempt/part-1.parquet" ]; do
    [ $SECONDS -lt $deadline ] || fail "part 1 never saved"
    sleep 0.2
done
[ "$(squeue -h -j "${array}_1" -o %t)" = R ] || fail "part 1 ended before it could be requeued"
scontrol requeue "${array}_1"
wait_jobs "$array" "$merge"
grep -E "resuming .*part-1.parquet: [1-9][0-9]* of [0-9]+ images done$" "$work/preempt/part-1.out" ||
    fail "part 1 did not resume its saved batches: $(cat "$work/preempt/part-1.out")"
same_as_whole "$work/preempt"

echo "== 3. a part that fails for good, then the documented retry"
# Task 2 alone is given a corrupt model file.
printf 'not a model' > "$work/corrupt.safetensors"
cat > "$work/flaky-blockdrop" <<FLAKY
#!/bin/sh
if [ "\$SLURM_ARRAY_TASK_ID" = 2 ] && [ -e "$work/break-part-2" ]; then
    exec "$bd" eval --model "$work/corrupt.safetensors" --data "$data" --no-baselines
fi
exec "$bd" "\$@"
FLAKY
chmod +x "$work/flaky-blockdrop"
touch "$work/break-part-2"
read -r array merge < <(submit "$work/failed" "$work/flaky-blockdrop")
wait_jobs "$array" "$merge"
[ ! -e "$work/failed/merge.out" ] || fail "the merge ran although part 2 failed"
[ ! -e "$work/failed/records.parquet" ] || fail "merged records written although part 2 failed"
grep -q "corrupt.safetensors" "$work/failed/part-2.out" || fail "part 2's log names no cause"
scontrol show job "$merge" | grep -Eq "JobState=CANCELLED|DependencyNeverSatisfied" ||
    fail "the merge job was neither cancelled nor held: $(scontrol show job "$merge")"
rm "$work/break-part-2"
read -r array merge < <(submit "$work/failed" "$work/flaky-blockdrop")
wait_jobs "$array" "$merge"
grep -q "images done (complete)" "$work/failed/part-1.out" || fail "part 1 was evaluated again"
same_as_whole "$work/failed"

echo "== 4. a training job requeued mid-run"
train_flags=(base --config R32_C10 --data "$repo/assets/cifar10-sample" --epochs 3
    --batch-size 24 --test-images 48)
job=$(CPUS=1 BLOCKDROP=$bd examples/slurm_train.sh "$work/run" "${train_flags[@]}" | tail -1)
deadline=$((SECONDS + 300))
until [ "$( { wc -l < "$work/run/metrics.csv"; } 2>/dev/null || echo 0)" -ge 2 ]; do
    [ $SECONDS -lt $deadline ] || fail "the training job finished no epoch: $(cat "$work/run.slurm.out")"
    sleep 0.2
done
sleep 0.5
scontrol requeue "$job"
wait_jobs "$job"
grep -q "blockdrop train exited 75" "$work/run.slurm.out" ||
    fail "the job was not stopped with its state saved: $(cat "$work/run.slurm.out")"
RAYON_NUM_THREADS=1 "$bd" train "${train_flags[@]}" --out "$work/whole-run" > /dev/null
"$python" - "$work/run" "$work/whole-run" <<'PY' || fail "the requeued run differs from an uninterrupted one"
import json, struct, sys
def metrics(run):  # without the timing columns
    rows = open(f"{run}/metrics.csv").read().split()
    return [",".join(c for i, c in enumerate(r.split(",")) if i not in (9, 10)) for r in rows]
def tensors(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    return {k: data[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]] for k, v in header.items()}
a, b = sys.argv[1:]
assert len(metrics(a)) == 4, metrics(a)
assert metrics(a) == metrics(b), (metrics(a), metrics(b))
assert tensors(f"{a}/last.safetensors") == tensors(f"{b}/last.safetensors"), "weights differ"
print("training: requeued run equals the uninterrupted one (metrics and weights)")
PY
