#!/usr/bin/env bash
# A training run as a requeueable Slurm job that survives preemption and time limits.
#
#   examples/slurm_train.sh RUN_DIR STAGE [FLAGS…]
#
# e.g. examples/slurm_train.sh /shared/runs/ft finetune --from /shared/runs/cl --data /shared/cifar10
#
# The job runs `blockdrop train STAGE FLAGS… --out RUN_DIR`, or `--resume RUN_DIR` once the run
# folder holds a run. When Slurm preempts or requeues it (SIGTERM), or 120 s before its time
# limit (SIGUSR1, from --signal), `blockdrop train` saves the run at the next batch boundary and
# exits 75; the job then requeues itself and continues where it stopped. Exit 0 ends the job;
# any other exit code fails it.
#
# BLOCKDROP (default: blockdrop on PATH), CPUS (default 8) and SBATCH_FLAGS (e.g. "--time=4:00:00
# --partition=gpu") are passed on. Prints the job id on its last line.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 RUN_DIR STAGE [FLAGS…]" >&2; exit 2; }
run=$(realpath -m "$1") stage=$(printf %q "$2")
shift 2
bd=$(printf %q "${BLOCKDROP:-blockdrop}")
cpus=${CPUS:-8}
flags=""
[ $# -eq 0 ] || flags=$(printf ' %q' "$@")
# Quoted for the batch script below, whatever the path holds.
qrun=$(printf %q "$run") qconfig=$(printf %q "$run/config.json")
mkdir -p "$(dirname "$run")"

# The batch script runs blockdrop in the background so that its trap can pass the time-limit
# warning on (--signal=B:USR1 signals the batch shell only). A preemption's or requeue's SIGTERM
# reaches every process of the job, blockdrop included: the shell only outlives it (a second
# SIGTERM would stop blockdrop before it saved).
# shellcheck disable=SC2086
job=$(sbatch --parsable --requeue --open-mode=append --output="$run.slurm.out" \
    --job-name="blockdrop-train-$stage" --cpus-per-task="$cpus" --signal=B:USR1@120 \
    --export=ALL,RAYON_NUM_THREADS="$cpus" ${SBATCH_FLAGS:-} <<SCRIPT
#!/usr/bin/env bash
if [ -e $qconfig ]; then
    $bd train $stage --resume $qrun &
else
    $bd train $stage$flags --out $qrun &
fi
pid=\$!
trap 'kill -USR1 \$pid 2>/dev/null' USR1
trap 'true' TERM
# wait returns early when a trapped signal arrives: wait again until blockdrop has exited.
while :; do
    wait \$pid
    code=\$?
    kill -0 \$pid 2>/dev/null || break
done
echo "blockdrop train exited \$code (job \$SLURM_JOB_ID, restart \${SLURM_RESTART_COUNT:-0})"
if [ \$code -eq 75 ]; then
    # Stopped with its state saved: run again. (A requeue already under way makes this a no-op.)
    scontrol requeue \$SLURM_JOB_ID || true
    exit 0
fi
exit \$code
SCRIPT
)
echo "submitted training job $job: $stage into $run (log: $run.slurm.out)"
echo "$job"
