#!/usr/bin/env bash
# A one-node Slurm cluster on this machine: for trying the Slurm examples by hand, and for CI's
# cluster check (.ci/slurm-check.sh). Run it as root on Debian or Ubuntu.
#
#   examples/slurm/cluster.sh up       installs slurm-wlm's daemons and munge if missing, writes
#                                      the configuration, starts munged, slurmctld and slurmd, and
#                                      waits until the node is idle; prints the SLURM_CONF line
#   examples/slurm/cluster.sh down     stops exactly the daemons `up` started (by their recorded
#                                      process ids) and nothing else
#   examples/slurm/cluster.sh status   says whether the cluster is up
#
# Everything lives under one folder outside the repository: BLOCKDROP_SLURM_DIR, default
# /tmp/blockdrop-slurm (slurm.conf, munge key and socket, state, spool, logs, pid files).
# Nothing is exported: use the printed `export SLURM_CONF=…` line in the shell that submits.
# `up` twice, or `down` without `up`, does nothing harmful. Ports: SLURMCTLD_PORT (6817) and
# SLURMD_PORT (6818).
set -euo pipefail

dir=${BLOCKDROP_SLURM_DIR:-/tmp/blockdrop-slurm}
conf=$dir/slurm.conf
daemons=(munged slurmctld slurmd)

say() { echo "cluster: $*"; }
fail() { echo "cluster: $*" >&2; exit 2; }

# The process id recorded for daemon $1, when that process is still that daemon.
running_pid() {
    local pid_file=$dir/run/$1.pid pid
    [ -s "$pid_file" ] || return 1
    pid=$(tr -dc 0-9 < "$pid_file")
    [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] || return 1
    # A recycled id belongs to another program: never signal it.
    [ "$(cat "/proc/$pid/comm")" = "$1" ] || return 1
    echo "$pid"
}

is_up() {
    local d
    for d in "${daemons[@]}"; do running_pid "$d" > /dev/null || return 1; done
}

install_packages() {
    local missing=()
    command -v munged > /dev/null || missing+=(munge)
    command -v slurmctld > /dev/null || missing+=(slurmctld)
    command -v slurmd > /dev/null || missing+=(slurmd)
    command -v sbatch > /dev/null || missing+=(slurm-client)
    [ ${#missing[@]} -eq 0 ] && return
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${missing[@]}" > "$dir/log/apt.log" 2>&1 || {
        apt-get update > "$dir/log/apt.log" 2>&1
        apt-get install -y --no-install-recommends "${missing[@]}" >> "$dir/log/apt.log" 2>&1
    } || fail "could not install ${missing[*]} (see $dir/log/apt.log)"
}

write_config() {
    local host cpus mem_mb
    host=$(hostname -s)
    cpus=$(nproc)
    mem_mb=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
    cat > "$conf" <<CONF
# Written by examples/slurm/cluster.sh: one node, this machine.
ClusterName=blockdrop
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
SlurmctldPort=${SLURMCTLD_PORT:-6817}
SlurmdPort=${SLURMD_PORT:-6818}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
JobRequeue=1
KillWait=30
MinJobAge=600
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
}

up() {
    [ "$(id -u)" -eq 0 ] || fail "needs root (the daemons run as root here)"
    if is_up; then
        say "already up"
        echo "export SLURM_CONF=$conf"
        return
    fi
    # Daemons left from a half-finished `up`: stop them first.
    down quiet
    mkdir -p "$dir"/{munge,state,spool,log,run}
    chmod 700 "$dir/munge"
    install_packages
    [ -s "$dir/munge/munge.key" ] || {
        head -c 1024 /dev/urandom > "$dir/munge/munge.key"
        chmod 400 "$dir/munge/munge.key"
    }
    write_config
    munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
        --pid-file="$dir/run/munged.pid" --log-file="$dir/log/munged.log" \
        --seed-file="$dir/munge/munged.seed"
    SLURM_CONF=$conf slurmctld -f "$conf"
    SLURM_CONF=$conf slurmd -f "$conf"
    local deadline=$((SECONDS + 60)) state=""
    while [ $SECONDS -lt $deadline ]; do
        state=$(SLURM_CONF=$conf sinfo -h -o %t 2> /dev/null | head -1 || true)
        [ "$state" = idle ] && break
        sleep 1
    done
    if [ "$state" != idle ]; then
        echo "cluster: the node did not become idle in 60 s (state '${state:-none}'); logs in $dir/log" >&2
        down quiet
        exit 1
    fi
    say "up: one node ($(nproc) CPUs), configuration and state in $dir"
    echo "export SLURM_CONF=$conf"
}

down() {
    local d pid stopped=0 jobs
    # The cluster's jobs first, so that none outlives it (a slurmstepd and its blockdrop).
    if running_pid slurmctld > /dev/null; then
        jobs=$(SLURM_CONF=$conf squeue -h -o %A 2> /dev/null | sort -u | tr '\n' ' ' || true)
        if [ -n "${jobs// /}" ]; then
            # shellcheck disable=SC2086
            SLURM_CONF=$conf scancel $jobs 2> /dev/null || true
            for _ in $(seq 1 60); do
                [ -z "$(SLURM_CONF=$conf squeue -h 2> /dev/null)" ] && ! pgrep -x slurmstepd > /dev/null && break
                sleep 0.5
            done
        fi
    fi
    for d in slurmd slurmctld munged; do
        pid=$(running_pid "$d") || { rm -f "$dir/run/$d.pid"; continue; }
        kill -TERM "$pid" 2> /dev/null || true
        for _ in $(seq 1 100); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
        if [ -e "/proc/$pid" ]; then kill -KILL "$pid" 2> /dev/null || true; fi
        rm -f "$dir/run/$d.pid"
        stopped=$((stopped + 1))
    done
    [ "${1:-}" = quiet ] && return
    if [ $stopped -eq 0 ]; then say "not up (nothing to stop)"; else say "down ($stopped daemons stopped)"; fi
}

status() {
    if is_up; then
        say "up; export SLURM_CONF=$conf"
        SLURM_CONF=$conf sinfo
    else
        say "down"
        return 1
    fi
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
