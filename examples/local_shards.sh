#!/usr/bin/env bash
# The local equivalent of the cluster examples: N background processes, one part each, then
# merge. Rerunning it after a kill resumes every unfinished part.
#
#   examples/local_shards.sh MODEL DATA OUT_DIR [PARTS] [-- EVAL_FLAGS…]
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 MODEL DATA OUT_DIR [PARTS] [-- EVAL_FLAGS…]" >&2; exit 2; }
model=$1 data=$2 out=$3
shift 3
parts=2
if [ $# -gt 0 ] && [ "$1" != "--" ]; then parts=$1; shift; fi
if [ $# -gt 0 ] && [ "$1" = "--" ]; then shift; fi
bd=${BLOCKDROP:-target/release/blockdrop}
mkdir -p "$out"
threads=$(( $(nproc) / parts )); [ "$threads" -ge 1 ] || threads=1
pids=()
for k in $(seq 1 "$parts"); do
    RAYON_NUM_THREADS=$threads "$bd" eval --model "$model" --data "$data" --no-baselines \
        --shard "$k/$parts" --records "$out/part-$k.parquet" --resume "$@" \
        > "$out/part-$k.out" 2>&1 &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
[ "$status" -eq 0 ] || { echo "a part failed: see $out/part-*.out" >&2; exit "$status"; }
"$bd" merge --records "$out/records.parquet" "$out"/part-*.parquet
