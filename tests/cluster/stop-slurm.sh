#!/usr/bin/env bash
# stop-slurm.sh: stop what tests/cluster/start-slurm.sh started, and nothing else.
#
# Cancels the jobs still in this private cluster (their slurmstepd would outlive slurmd), then
# stops each daemon by the PID that start-slurm.sh recorded in $STATE, only if that PID is still
# a process of the expected name: TERM, then KILL after 20s.  Packages, configs, spool and the
# accounting database stay, so the next start-slurm.sh is fast.  With no controller recorded in
# $STATE (a cluster started by someone else), it cancels nothing and stops nothing.
set -uo pipefail

STATE=${ROBUSTREG_SLURM_STATE:-/run/robustreg-slurm}
log() { printf '[stop-slurm] %s\n' "$*"; }

pid_of() {  # pid_of NAME COMM: the recorded PID, if it is still that daemon
    local pidfile=$STATE/$1.pid pid
    [ -s "$pidfile" ] || return 1
    pid=$(cat "$pidfile")
    [ -d "/proc/$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] && echo "$pid"
}

# Jobs first, while slurmctld and slurmd are up to deliver the signals.
if pid_of slurmctld slurmctld >/dev/null; then
    jobs=$(squeue -h -o '%A' 2>/dev/null | sort -u | tr '\n' ' ')
    if [ -n "${jobs// /}" ]; then
        log "cancelling jobs: $jobs"
        # shellcheck disable=SC2086
        scancel $jobs 2>/dev/null || true
        for ((i = 0; i < 80; i++)); do
            [ -z "$(squeue -h -o '%A' 2>/dev/null)" ] && break
            sleep 0.25
        done
    fi
fi

stop() {  # stop NAME COMM
    local pid i
    if ! pid=$(pid_of "$1" "$2"); then
        log "$1 not running (from here)"
        rm -f "$STATE/$1.pid"
        return
    fi
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 80; i++)); do
        [ -d "/proc/$pid" ] || break
        sleep 0.25
    done
    if [ -d "/proc/$pid" ]; then
        log "$1 (pid $pid) ignored TERM for 20s: KILL"
        kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$STATE/$1.pid"
    log "$1 stopped (pid $pid)"
}

stop slurmd slurmd
stop slurmctld slurmctld
stop slurmdbd slurmdbd
stop mariadb mariadbd
stop munged munged
