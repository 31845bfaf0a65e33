#!/usr/bin/env bash
# Reproduces the shipped CIFAR-10 model (assets/cifar10.safetensors, R32_C10) from scratch on
# the CIFAR-10 JPEG class folders: base ResNet-32 → curriculum → joint finetuning. Every
# stage holds 5,000 training images out (--validation, drawn by the seed) and picks its best
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
data=${1:-${CIFAR10_JPEG:-$runs/cifar10-jpeg}}
if [ ! -d "$data/train" ] && [ ! -d "$data/cifar-10-batches-bin" ] && [ ! -d "$data/cifar-10-batches-py" ]; then
    archive=../shared/data/cifar10-jpeg.tar.gz
    if [ ! -f "$archive" ]; then
        echo "no CIFAR-10 at $data and no $archive: give the data folder as the first argument" >&2
        exit 2
    fi
    mkdir -p "$runs"
    tar xzf "$archive" -C "$runs"
    data=$runs/cifar10-jpeg
fi
cargo build --release
bd=target/release/blockdrop

# stage DIR EPOCHS ARGS…: start the run in DIR, or resume it when it exists.
stage() {
    local dir=$1 epochs=$2
    shift 2
    if [ -e "$dir/config.json" ]; then
        "$bd" train "$1" --resume "$dir" --epochs "$epochs"
    else
        "$bd" train "$@" --out "$dir" --epochs "$epochs"
    fi
}

# Base: SGD momentum 0.9, weight decay 5e-4, lr 0.1 cosine over 20 epochs, batch 128, crop+flip.
stage "$runs/c10-base" 20 base --config R32_C10 --data "$data" --validation 5000 --seed 0
