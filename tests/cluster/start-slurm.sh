#!/usr/bin/env bash
# start-slurm.sh: a single-node SLURM cluster on this machine, for robustreg's SLURM test
# (tests/test_slurm.py, `make test-slurm`).  Debian or Ubuntu, run as root, no systemd needed.
#
# Installs what is missing (Debian packages: munge, slurmctld, slurmd, slurm-client, and for
# accounting slurmdbd and mariadb-server), writes the configs, starts the daemons in the background
# and waits until `sinfo` shows the node idle, with one partition `debug`.  Idempotent: a daemon
# whose PID file names a live process of the right name is left alone; packages and configs already
# right are kept.  About 15 s with nothing installed, 2 s after a stop.
#
#   bash tests/cluster/start-slurm.sh                     # munge + MariaDB + slurmdbd + slurmctld + slurmd
#   SLURM_ACCOUNTING=0 bash tests/cluster/start-slurm.sh  # no slurmdbd/MariaDB: sacct does not work, and then
#                                        # submitit never learns that a job was killed by the
#                                        # scheduler (scancel, time limit): its sweep waits forever
#
# A SLURM controller that answers already (not started by this script) is left alone: the script
# says so and exits 0 without writing any config.  Exit status 3: this machine cannot run the
# cluster (not root, no apt-get or dpkg); 1: a step failed (logs in /var/log/slurm).
# Stop with stop-slurm.sh: it stops only the PIDs recorded here, in $STATE.
set -euo pipefail

ACCOUNTING=${SLURM_ACCOUNTING:-1}
STATE=${ROBUSTREG_SLURM_STATE:-/run/robustreg-slurm}  # PID files of what this script started
LOGS=/var/log/slurm
CLUSTER=local
PARTITION=debug
NODE=$(hostname -s)
DBPASS=slurmdbpass                                  # local socket only (--skip-networking)

log() { printf '[start-slurm] %s\n' "$*"; }
die() { printf '[start-slurm] error: %s\n' "$*" >&2; exit 1; }
unfit() { printf '[start-slurm] cannot run here: %s\n' "$*" >&2; exit 3; }
[ "$(id -u)" = 0 ] || unfit "run as root"
command -v dpkg-query >/dev/null && command -v apt-get >/dev/null || unfit "no dpkg-query/apt-get (Debian packages)"

# A PID file names a live process whose command name is $2.
alive() {
    local pidfile=$STATE/$1.pid pid
    [ -s "$pidfile" ] || return 1
    pid=$(cat "$pidfile")
    [ -d "/proc/$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}

# start NAME COMM CMD...: run CMD in the background (it must not fork away), record its PID.
start() {
    local name=$1 comm=$2; shift 2
    if alive "$name" "$comm"; then log "$name already running (pid $(cat "$STATE/$name.pid"))"; return; fi
    setsid "$@" >"$LOGS/$name.stdout" 2>&1 </dev/null &
    local pid=$! i
    # Until it has exec'd (bash -> setsid -> ... -> the daemon, same PID), or died.
    for ((i = 0; i < 100; i++)); do
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] && break
        [ -d "/proc/$pid" ] || break
        sleep 0.05
    done
    echo "$pid" >"$STATE/$name.pid"
    alive "$name" "$comm" || { tail -20 "$LOGS/$name.stdout" >&2; die "$name did not start (logs in $LOGS)"; }
    log "$name started (pid $pid)"
}

# stop_recorded NAME COMM: TERM the recorded PID (if it is still that daemon) and wait for it.
stop_recorded() {
    alive "$1" "$2" || return 0
    local pid i; pid=$(cat "$STATE/$1.pid")
    kill -TERM "$pid"
    for ((i = 0; i < 80; i++)); do [ -d "/proc/$pid" ] || break; sleep 0.25; done
    [ -d "/proc/$pid" ] && kill -KILL "$pid"
    rm -f "$STATE/$1.pid"
}

# wait_for NAME COMM SECONDS CMD...: poll CMD until it succeeds, while NAME's process lives.
wait_for() {
    local name=$1 comm=$2 secs=$3 i; shift 3
    for ((i = 0; i < secs * 4; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        alive "$name" "$comm" || { tail -20 "$LOGS/$name.stdout" >&2; die "$name exited (logs in $LOGS)"; }
        sleep 0.25
    done
    die "$name not ready after ${secs}s (logs in $LOGS)"
}

# 0. A cluster that someone else started: use it, touch nothing ----------------------------
if ! alive slurmctld slurmctld && command -v scontrol >/dev/null && timeout 10 scontrol ping 2>/dev/null | grep -q UP; then
    log "a SLURM controller is already up (not started by this script): left alone"
    sinfo
    exit 0
fi

# 1. Packages ------------------------------------------------------------------------------
pkgs=(munge slurmctld slurmd slurm-client)
[ "$ACCOUNTING" = 1 ] && pkgs+=(slurmdbd mariadb-server)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    t0=$SECONDS
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    log "installed in $((SECONDS - t0))s"
fi

mkdir -p "$STATE" "$LOGS" /var/spool/slurmctld /var/spool/slurmd /etc/slurm

# 2. slurm.conf (before any daemon: every Slurm command reads it) ---------------------------
if [ "$ACCOUNTING" = 1 ]; then
    ACCT_LINES="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost"
else
    ACCT_LINES="AccountingStorageType=accounting_storage/none"
fi
# The node as slurmd sees it (CPUs, sockets, cores, threads); memory a bit under the machine's,
# or slurmd would report less than configured and the node would be drained.
HW=$(slurmd -C | head -1)
TOPO=$(grep -oE 'CPUs=[0-9]+ Boards=[0-9]+ SocketsPerBoard=[0-9]+ CoresPerSocket=[0-9]+ ThreadsPerCore=[0-9]+' <<<"$HW" \
    || echo "CPUs=$(nproc)")
MEM_MB=$(grep -oE 'RealMemory=[0-9]+' <<<"$HW" | cut -d= -f2 || true)
[ -n "$MEM_MB" ] || MEM_MB=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
REAL_MB=$((MEM_MB * 95 / 100))
conf=$(mktemp)
cat >"$conf" <<EOF
# written by robustreg's tests/cluster/start-slurm.sh: one node, no cgroups
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
$ACCT_LINES
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
NodeName=$NODE NodeAddr=127.0.0.1 $TOPO RealMemory=$REAL_MB State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
# A cluster configured by someone else is left alone: only a file this script wrote is replaced.
for f in /etc/slurm/slurm.conf /etc/slurm/slurmdbd.conf; do
    if [ -s "$f" ] && ! grep -q "written by robustreg's tests/cluster/start-slurm.sh" "$f"; then
        die "$f exists and was not written by this script; not replacing it (the host's own cluster?)"
    fi
done
changed=0
if ! cmp -s "$conf" /etc/slurm/slurm.conf; then
    install -m 0644 "$conf" /etc/slurm/slurm.conf
    changed=1
fi
rm -f "$conf"

# 3. munge ---------------------------------------------------------------------------------
if [ ! -s /etc/munge/munge.key ]; then
    log "creating /etc/munge/munge.key"
    mungekey --create --keyfile=/etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key && chmod 0600 /etc/munge/munge.key
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
# As the munge user, in the foreground (so $! is munged itself).
start munged munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground
wait_for munged munged 20 bash -c 'munge -n | unmunge'

# 4. MariaDB + slurmdbd (accounting: sacct) ------------------------------------------------
if [ "$ACCOUNTING" = 1 ]; then
    install -d -o mysql -g root -m 0755 /run/mysqld
    if [ ! -d /var/lib/mysql/mysql ]; then
        log "initialising /var/lib/mysql"
        mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    fi
    start mariadb mariadbd /usr/sbin/mariadbd --user=mysql --skip-networking \
        --innodb-buffer-pool-size=128M --innodb-lock-wait-timeout=900
    wait_for mariadb mariadbd 60 mariadb-admin ping
    mariadb <<SQL
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DBPASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
SQL
    umask 077
    cat >/etc/slurm/slurmdbd.conf <<EOF
# written by robustreg's tests/cluster/start-slurm.sh
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DBPASS
StorageLoc=slurm_acct_db
PidFile=/run/slurmdbd.pid
LogFile=$LOGS/slurmdbd.log
EOF
    umask 022
    start slurmdbd slurmdbd /usr/sbin/slurmdbd -D
    wait_for slurmdbd slurmdbd 60 sacctmgr -n show cluster
fi

# 5. slurmctld + slurmd --------------------------------------------------------------------
if [ "$changed" = 1 ] && { alive slurmctld slurmctld || alive slurmd slurmd; }; then
    log "slurm.conf changed: restarting slurmd and slurmctld"
    stop_recorded slurmd slurmd
    stop_recorded slurmctld slurmctld
fi
start slurmctld slurmctld /usr/sbin/slurmctld -D
wait_for slurmctld slurmctld 60 scontrol ping
start slurmd slurmd /usr/sbin/slurmd -D

# 6. Wait until the node is idle -----------------------------------------------------------
for ((i = 0; i < 240; i++)); do
    alive slurmd slurmd || { tail -20 "$LOGS/slurmd.stdout" >&2; die "slurmd exited (logs in $LOGS)"; }
    st=$(sinfo -h -n "$NODE" -o '%T' 2>/dev/null || true)
    case "$st" in
        idle | mixed | allocated) break ;;
        down* | drain* | drained*) scontrol update NodeName="$NODE" State=RESUME 2>/dev/null || true ;;
    esac
    sleep 0.25
done
case "$st" in idle | mixed | allocated) ;; *) die "node $NODE is '${st:-?}' after 60s (see $LOGS)" ;; esac
sinfo
log "cluster up (node $NODE: $st; accounting: $([ "$ACCOUNTING" = 1 ] && echo slurmdbd || echo none))"
