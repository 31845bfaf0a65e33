#!/usr/bin/env bash
# BlockDrop from the authors' own released ResNet-32 base (pk_E_164_A_0.923.t7, as their
# instructions download it) on the CIFAR-10 JPEG class folders: the base network alone, then a
# curriculum and joint finetuning, each stage picking its best epoch on 5,000 held-out
# training images, and the test split reported at the end. An example, not a shipped model:
# the base was trained on the lossless images and loses accuracy on JPEGs (about 82% against
# its 92.3%); the joint finetuning trains it on them and recovers much of it.
#
#   examples/authors_base_cifar10.sh BASE.t7 [DATA]
#
# BASE.t7 defaults to ../shared/checkpoints/pk_E_164_A_0.923.t7; DATA as in
# examples/train_cifar10.sh. Short schedules (20,000 images per epoch: 7 curriculum epochs
# reaching every block by the 5th, two finetuning epochs) keep it to about 20 minutes on two
# cores; rerunning resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-runs}
base=${1:-../shared/checkpoints/pk_E_164_A_0.923.t7}
if [ ! -f "$base" ]; then
    echo "no base network at $base: give the authors' pk_E_164_A_0.923.t7 as the first argument" >&2
    exit 2
fi
source examples/stages.sh
data=$(cifar10_data "${2:-${CIFAR10_JPEG:-$runs/cifar10-jpeg}}" "$runs")

echo "== the authors' base network alone, every block"
"$bd" eval --model "$base" --data "$data" --batch 64 --no-baselines
"$bd" import --torch "$base" --out "$runs/authors-base.safetensors"
stage "$runs/authors-curriculum" 7 curriculum --base "$base" --data "$data" --validation 5000 \
    --batch-size 256 --cl-step 3 --images-per-epoch 20000 --seed 0
stage "$runs/authors-finetune-g10" 2 finetune --from "$runs/authors-curriculum" --data "$data" \
    --validation 5000 --penalty -10 --images-per-epoch 20000 --seed 0
echo "== curriculum (the base unchanged)"
"$bd" eval --model "$runs/authors-curriculum/best.safetensors" --data "$data" --batch 64 --no-baselines
echo "== jointly finetuned: BlockDrop, then its own full network"
"$bd" eval --model "$runs/authors-finetune-g10/best.safetensors" --data "$data" --batch 64 --no-baselines
"$bd" eval --model "$runs/authors-finetune-g10/best.safetensors" --data "$data" --batch 64 --no-baselines --threshold 0
