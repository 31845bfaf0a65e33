#!/usr/bin/env bash
# Reproduces the shipped CIFAR-10 model (assets/cifar10.safetensors, R32_C10) from scratch on
# the CIFAR-10 JPEG class folders: base ResNet-32 → curriculum → joint finetuning, twice. Every
# stage holds the same 5,000 training images out (--validation, whatever the seed) and picks its best
# epoch on them; the test split is only reported at the end. Each stage writes a run folder
# under $RUNS (config.json, metrics.csv, last/best.safetensors); rerunning the script resumes
# an interrupted stage where it stopped and skips finished ones.
#
#   examples/train_cifar10.sh [DATA]   # DATA: the folder holding train/ and test/ class folders
#
# DATA defaults to $CIFAR10_JPEG, else unpacks ../shared/data/cifar10-jpeg.tar.gz into
# $RUNS/cifar10-jpeg (see docs/inputs.md for the layout; any CIFAR-10 in class folders named
# airplane … truck, or the binary or python release, works the same).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-runs}
source examples/stages.sh
data=$(cifar10_data "${1:-${CIFAR10_JPEG:-$runs/cifar10-jpeg}}" "$runs")

# Base: SGD momentum 0.9, weight decay 5e-4, lr 0.1 with a cosine schedule, batch 128,
# crop+flip. (The shipped run was started for 20 epochs and resumed after its 10th with
# `--epochs 16`, which shortens the cosine from there on; 16 from the start anneals a little
# sooner.)
stage "$runs/c10-base" 16 base --config R32_C10 --data "$data" --validation 5000 --seed 0
# Curriculum (the reference's flags: Adam 1e-3, batch 2048, α 0.8, β 0.1, γ -1) with the policy
# network looking at a half-size image (--policy-input-pool 2: 16×16, a quarter of its FLOPs):
# two more decisions per epoch (--cl-step 2) reach all 15 blocks in 8 epochs, then 4 more;
# 30,000 images per epoch.
stage "$runs/c10-p2-curriculum" 12 curriculum --base "$runs/c10-base/best.safetensors" \
    --data "$data" --validation 5000 --policy-input-pool 2 --cl-step 2 --images-per-epoch 30000 --seed 0
# Joint finetuning (Adam, batch 256, γ -0.5, lr 5e-4, ×0.3 after 6 of 8 epochs of 30,000
# images) with a small entropy bonus on every decision (--finetune-beta 0.02), which keeps the
# policies from collapsing to a handful.
stage "$runs/c10-p2-ft-g0.5-hb0.02" 8 finetune --from "$runs/c10-p2-curriculum" \
    --data "$data" --validation 5000 --penalty -0.5 --finetune-beta 0.02 --lr 5e-4 \
    --epoch-step 6 --lr-decay-ratio 0.3 --images-per-epoch 30000 --seed 0
# A second finetuning from that run's best epoch, at a lower constant lr and a larger bonus:
# fewer blocks, more distinct policies. (The shipped run was started for 4 epochs and resumed
# with `--epochs 6`; at a constant lr that is the same as 6 from the start.)
stage "$runs/c10-p2-ft2-hb0.05" 6 finetune --from "$runs/c10-p2-ft-g0.5-hb0.02/best.safetensors" \
    --data "$data" --validation 5000 --penalty -0.5 --finetune-beta 0.05 --lr 1.5e-4 \
    --images-per-epoch 30000 --seed 1
# Its best.safetensors (best validation reward) is assets/cifar10.safetensors. The test split
# is only reported:
for run in c10-p2-curriculum c10-p2-ft-g0.5-hb0.02 c10-p2-ft2-hb0.05; do
    echo "== $run: BlockDrop with its adaptivity line, then its own full network"
    "$bd" eval --model "$runs/$run/best.safetensors" --data "$data" --batch 64 --baseline-images 10000
    "$bd" eval --model "$runs/$run/best.safetensors" --data "$data" --batch 64 --no-baselines --threshold 0
done
echo "== the base network, every block (runs written before this version keep an untrained policy"
echo "   beside it: --threshold 0 keeps every block either way)"
"$bd" eval --model "$runs/c10-base/best.safetensors" --data "$data" --batch 64 --no-baselines --threshold 0
