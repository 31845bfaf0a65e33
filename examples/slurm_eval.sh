#!/usr/bin/env bash
# Sharded evaluation as a Slurm array job, and the merge as a job that waits for it.
#
#   examples/slurm_eval.sh MODEL DATA OUT_DIR [PARTS]
#
# submits PARTS (default 16) array tasks: task K runs `blockdrop eval --shard K/PARTS` into
# OUT_DIR/part-K.parquet on shared storage, resuming its part if the task was preempted and
# requeued. A merge job, dependent on every task ending well, joins them into
# OUT_DIR/records.parquet and prints the reference's four lines to OUT_DIR/merge.out.
# `blockdrop` must be on PATH on the compute nodes (or set BLOCKDROP=/path/to/blockdrop).
set -euo pipefail
model=$(realpath "$1") data=$(realpath "$2") out=$(realpath -m "$3") parts=${4:-16}
bd=${BLOCKDROP:-blockdrop}
mkdir -p "$out"

array=$(sbatch --parsable --array="1-$parts" --requeue --job-name=blockdrop-eval \
    --cpus-per-task="${CPUS:-8}" --export=ALL,RAYON_NUM_THREADS="${CPUS:-8}" --output="$out/part-%a.out" --open-mode=append --wrap="
    $bd eval --model '$model' --data '$data' --no-baselines \\
        --shard \$SLURM_ARRAY_TASK_ID/$parts --records '$out'/part-\$SLURM_ARRAY_TASK_ID.parquet --resume")

# afterok: the merge runs once every task succeeded, and is dropped if one fails for good.
sbatch --dependency="afterok:$array" --kill-on-invalid-dep=yes --job-name=blockdrop-merge \
    --output="$out/merge.out" \
    --wrap="$bd merge --records '$out/records.parquet' '$out'/part-*.parquet"
echo "submitted array job $array ($parts parts) and its merge; results in $out"
