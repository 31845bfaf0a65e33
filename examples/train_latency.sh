#!/usr/bin/env bash
# Trains a latency-aware BlockDrop policy for this machine (assets/fmnist-latency.safetensors
# was made this way) and compares it with the default in one run.
#
#   1. profile --cost: the default's per-block median times at batch 1 on this CPU (the
#      instruction-set path in use is in the table; BLOCKDROP_ISA=avx2 forces one);
#   2. train finetune --cost TABLE from the default: the reward counts the kept blocks' share
#      of the measured block time instead of their number (docs/method.md, "Latency-aware
#      reward"), first at the default's γ, then at γ −1.2 (assets/fmnist-latency.safetensors
#      is that run's best model);
#   3. compare: both models on the full test set, with measured batch-1 latency, FLOPs,
#      blocks per segment and the latency the table predicts.
#
#   examples/train_latency.sh            # about 70 minutes on 2 cores; resumes if stopped
#
# Needs the Debian/Ubuntu package dataset-fashion-mnist (.ci/run installs it). Time the
# comparison with nothing else running.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${FMNIST:-/usr/share/datasets/fashion-mnist}
runs=${RUNS:-runs}
if [ ! -e "$data/train-images-idx3-ubyte.gz" ]; then
    echo "no Fashion-MNIST at $data: install dataset-fashion-mnist (or set FMNIST=DIR)" >&2
    exit 2
fi
cargo build --release
bd=target/release/blockdrop
mkdir -p "$runs"
table="$runs/cost-r32-fmnist-b1.json"
run="$runs/fmnist-latency"

if [ ! -e "$table" ]; then
    "$bd" profile --model assets/default.safetensors --data "$data" --batch 1 --repeat 50 \
        --images 64 --cost "$table"
fi
# stage DIR EPOCHS ARGS…: start the run in DIR, or resume it when it exists.
stage() {
    local dir=$1 epochs=$2
    shift 2
    if [ -e "$dir/config.json" ]; then
        "$bd" train finetune --resume "$dir" --epochs "$epochs"
    else
        "$bd" train finetune "$@" --out "$dir" --epochs "$epochs"
    fi
}

# γ −1.5 as the default's last run, lr 1e-4 annealed ×0.3 every 2 epochs; then γ −1.2.
stage "$run" 5 --from assets/default.safetensors --data "$data" --cost "$table" \
    --penalty -1.5 --lr 1e-4 --epoch-step 2 --lr-decay-ratio 0.3 --seed 5
stage "$run-g12" 3 --from "$run/best.safetensors" --data "$data" --cost "$table" \
    --penalty -1.2 --lr 3e-5 --epoch-step 2 --lr-decay-ratio 0.3 --seed 6

# One run: accuracy, FLOPs, blocks per segment, measured and predicted batch-1 latency.
"$bd" compare --data "$data" --cost "$table" --profile-images 500 --tradeoff-images 2000 \
    --out "$runs/latency-vs-default" assets/default.safetensors "$run" "$run-g12"
# Batch-1 latency drifts by ±15% between runs on a shared machine: each profile's mean time
# ratio (BlockDrop path / full network, per image, interleaved) is the figure to compare.
for round in 1 2 3; do
    for model in assets/default.safetensors "$run/best.safetensors" "$run-g12/best.safetensors"; do
        echo "round $round, $model: $("$bd" profile --model "$model" --data "$data" \
            --images 300 --repeat 5 | tail -n 1)"
    done
done
