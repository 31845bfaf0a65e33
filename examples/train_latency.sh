#!/usr/bin/env bash
# Trains a latency-aware BlockDrop policy for this machine (assets/fmnist-latency.safetensors
# was made this way) and compares it with the default in one run.
#
#   1. profile --cost: the default's per-block median times at batch 1 on this CPU (the
#      instruction-set path in use is in the table; BLOCKDROP_ISA=avx2 forces one);
#   2. train finetune --cost TABLE from the default: the reward counts the kept blocks' share
#      of the measured block time instead of their number (docs/method.md, "Latency-aware
#      reward"), same γ as the default's last run;
#   3. compare: both models on the full test set, with measured batch-1 latency, FLOPs,
#      blocks per segment and the latency the table predicts.
#
#   examples/train_latency.sh            # about 45 minutes on 2 cores; resumes if stopped
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
if [ -e "$run/config.json" ]; then
    "$bd" train finetune --resume "$run" --epochs 5
else
    "$bd" train finetune --from assets/default.safetensors --data "$data" --out "$run" \
        --cost "$table" --penalty -1.5 --epochs 5 --lr 1e-4 --epoch-step 2 \
        --lr-decay-ratio 0.3 --seed 5
fi
"$bd" compare --data "$data" --cost "$table" --profile-images 500 --tradeoff-images 2000 \
    --out "$runs/latency-vs-default" assets/default.safetensors "$run"
