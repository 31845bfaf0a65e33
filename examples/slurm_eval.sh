#!/usr/bin/env bash
# Sharded evaluation as a Slurm array job, and the merge as a job that waits for it.
#
#   examples/slurm_eval.sh MODEL DATA OUT_DIR [PARTS]
#
# submits PARTS (default 16) array tasks: task K runs `blockdrop eval --shard K/PARTS` into
# OUT_DIR/part-K.parquet on shared storage. A task that is preempted or requeued
# (`scontrol requeue`) resumes its part from the last batch saved in that file. A merge job,
# dependent on every task ending well, joins them into OUT_DIR/records.parquet and prints the
# reference's four lines to OUT_DIR/merge.out.
#
# A task that fails for good (a bad model file, a full disk) leaves the merge job cancelled
# (afterok). Retry: fix the cause and run the same command again. Every part resumes from its
# file (a finished part ends at once) and a new merge job waits for them; TASKS=2,5 resubmits
# only those parts (Slurm's --array syntax).
#
# `blockdrop` must be on PATH on the compute nodes (or set BLOCKDROP=/path/to/blockdrop);
# CPUS (default 8) is each task's CPU count and thread count. Prints the two job ids as
# `array JOB merge JOB` on its last line. Tried on a one-node cluster by .ci/slurm-check.sh
# (examples/slurm/cluster.sh brings one up).
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 MODEL DATA OUT_DIR [PARTS]" >&2; exit 2; }
model=$(realpath "$1") data=$(realpath "$2") out=$(realpath -m "$3") parts=${4:-16}
cpus=${CPUS:-8}
tasks=${TASKS:-1-$parts}
mkdir -p "$out"
# Quoted for the job scripts below, whatever the paths hold.
bd=$(printf %q "${BLOCKDROP:-blockdrop}") qmodel=$(printf %q "$model") qdata=$(printf %q "$data")
qout=$(printf %q "$out") qmerged=$(printf %q "$out/records.parquet")

array=$(sbatch --parsable --array="$tasks" --requeue --job-name=blockdrop-eval \
    --cpus-per-task="$cpus" --export=ALL,RAYON_NUM_THREADS="$cpus" \
    --output="$out/part-%a.out" --open-mode=append --wrap="
    $bd eval --model $qmodel --data $qdata --no-baselines \\
        --shard \$SLURM_ARRAY_TASK_ID/$parts --records $qout/part-\$SLURM_ARRAY_TASK_ID.parquet --resume")

# afterok: the merge runs once every task succeeded, and is dropped if one fails for good.
merge=$(sbatch --parsable --dependency="afterok:$array" --kill-on-invalid-dep=yes \
    --job-name=blockdrop-merge --output="$out/merge.out" \
    --wrap="$bd merge --records $qmerged $qout/part-*.parquet")
echo "submitted array job $array (tasks $tasks of $parts parts) and merge job $merge; results in $out"
echo "array $array merge $merge"
