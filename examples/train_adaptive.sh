#!/usr/bin/env bash
# Trains a policy for adaptivity at equal FLOPs on a shipped model's base network, and measures
# it against the best static subsets on the full test set (docs/training.md, "Adaptivity that
# pays"; docs/method.md for each flag):
#
#   1. train curriculum: oracle-guided warm start (2 epochs), then REINFORCE on every decision
#      at once, four samples per image, a reward that counts the whole network's FLOPs, the
#      policy network on an 8x8 input; the base frozen; best epoch chosen on 5,000 held-out
#      training images;
#   2. train finetune at γ −5, policy and base together, four samples per image;
#   3. export --tradeoff-images 10000 of both: summary.json's adaptivity.gain_flops is the
#      figure (the test images choose nothing).
#
#   examples/train_adaptive.sh fmnist RUNS/NAME [CURRICULUM FLAGS…]   # ~20 min on 2 cores
#   examples/train_adaptive.sh cifar10 RUNS/NAME [CURRICULUM FLAGS…]  # ~30 min
#
# SEED (default 0) seeds both stages. It resumes a stopped run. Fashion-MNIST needs the Debian
# package dataset-fashion-mnist; CIFAR-10 a folder (CIFAR10=DIR) or ../shared's archive.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
    sed -n 2,18p "$0" >&2
    exit 2
fi
which=$1 run=$2
shift 2
seed=${SEED:-0}
source examples/stages.sh
case $which in
    fmnist)
        data=${FMNIST:-/usr/share/datasets/fashion-mnist}
        base=assets/default.safetensors
        if [ ! -e "$data/train-images-idx3-ubyte.gz" ]; then
            echo "no Fashion-MNIST at $data: install dataset-fashion-mnist (or set FMNIST=DIR)" >&2
            exit 2
        fi
        ;;
    cifar10)
        data=$(cifar10_data "${CIFAR10:-runs/cifar10-jpeg}" runs)
        base=assets/cifar10.safetensors
        ;;
    *)
        echo "first argument: fmnist or cifar10, not '$which'" >&2
        exit 2
        ;;
esac
mkdir -p "$(dirname "$run")"

stage "$run-cl" 6 curriculum --base "$base" --data "$data" --seed "$seed" \
    --policy-input-pool 4 --oracle-warm-start 2 --cl-step 15 --cost network --batch-size 512 \
    --samples 4 --validation 5000 --images-per-epoch 20000 "$@"
stage "$run-ft" 6 finetune --from "$run-cl" --data "$data" --seed "$seed" --penalty -5 \
    --cost network --samples 4 --validation 5000 --images-per-epoch 20000

for part in cl ft; do
    if [ ! -e "$run-$part-export/summary.json" ]; then
        "$bd" export --model "$run-$part/best.safetensors" --data "$data" \
            --out "$run-$part-export" --no-profile --tradeoff-images 10000
    fi
    echo "$run-$part: $(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); a=s["adaptivity"]
print("accuracy %.4f blocks %.2f MFLOPs %.1f policies %d gain_blocks %+.2f gain_flops %+.2f" % (s["accuracy"], s["block_usage_mean"], s["flops_mean"] / 1e6, s["unique_policies"], 100 * a["gain_blocks"], 100 * a["gain_flops"]))' "$run-$part-export/summary.json")"
done
