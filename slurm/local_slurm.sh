#!/usr/bin/env bash
# A single-node Slurm on localhost, for the tests and for trying sweeps without a cluster.
#
#   slurm/local_slurm.sh start    install (Debian slurm-wlm + munge, needs root) if missing,
#                                 write the config, start munged + slurmctld + slurmd
#   slurm/local_slurm.sh stop     stop the three daemons
#   slurm/local_slurm.sh status   sinfo
#
# The node gets this machine's CPUs and ~90% of its memory; one partition "debug" (default).
# State, logs and pid files live in $LR_SLURM_DIR (default /tmp/lr-slurm). Requeue is allowed,
# accounting is off (squeue is the source of truth).
set -euo pipefail

STATE=${LR_SLURM_DIR:-/tmp/lr-slurm}
CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
PARTITION=${LR_SLURM_PARTITION:-debug}

die() { echo "local_slurm: $*" >&2; exit 1; }

install_if_missing() {
  command -v slurmctld >/dev/null && command -v munged >/dev/null && return
  [ "$(id -u)" = 0 ] || die "slurm-wlm/munge are not installed and we are not root: apt-get install slurm-wlm munge"
  command -v apt-get >/dev/null || die "slurm-wlm/munge missing and no apt-get: install Slurm and munge by hand"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
}

write_config() {
  local cpus mem
  cpus=$(nproc)
  mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
  mkdir -p "$CONF_DIR" "$STATE/spool/ctld" "$STATE/spool/d" "$STATE/log"
  cat > "$CONF.tmp" <<CONF
# written by slurm/local_slurm.sh
ClusterName=lrlocal
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobRequeue=1
KillWait=10
MinJobAge=60
SchedulerParameters=defer_batch=0
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
  mv "$CONF.tmp" "$CONF"
}

start() {
  install_if_missing
  [ "$(id -u)" = 0 ] || die "starting the daemons needs root"
  write_config
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
  fi
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge && chown munge:munge /run/munge /var/log/munge /var/lib/munge
  pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
  pgrep -x slurmctld >/dev/null || slurmctld
  pgrep -x slurmd >/dev/null || slurmd -N localhost
  for _ in $(seq 1 60); do
    if sinfo -h -p "$PARTITION" -o "%T" 2>/dev/null | grep -qE "idle|mixed|allocated"; then
      echo "local Slurm up: partition $PARTITION, $(nproc) CPUs (logs in $STATE/log)"
      return
    fi
    sleep 1
  done
  scontrol update NodeName=localhost State=RESUME >/dev/null 2>&1 || true
  sinfo -h -p "$PARTITION" -o "%T" | grep -qE "idle|mixed|allocated" && { echo "local Slurm up"; return; }
  tail -20 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2 || true
  die "the node did not become idle within 60 s"
}

stop() {
  pkill -x slurmd 2>/dev/null || true
  pkill -x slurmctld 2>/dev/null || true
  pkill -x munged 2>/dev/null || true
  echo "local Slurm stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) sinfo ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
