#!/usr/bin/env bash
# A real single-node Slurm on this machine, for the `slurm` tests (tests/studies/cluster/)
# and for trying `salsweep sweep launch --executor slurm` without a cluster: Debian's
# slurm-wlm (22.05) with munge; one node, `localhost` on 127.0.0.1, with this machine's
# CPUs; slurmctld and slurmd run as root, no cgroups, no accounting database.
#
#   sudo .ci/slurm.sh          # install (apt), configure, start; again: restarts nothing
#   sinfo; squeue              # the partition `debug`, idle; no job
#
# .ci/run calls it under CI=true. Idempotent: what runs already is left running. Files:
# /etc/slurm/slurm.conf (written only when absent or ours), /var/spool/slurm{ctld,d},
# /var/log/slurm/.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

if [ "$(id -u)" -ne 0 ]; then
  echo "slurm.sh: run as root (it installs packages and starts daemons)" >&2
  exit 1
fi

if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

# munge: a key (Debian's package makes one; a bare image may lack it), then the daemon, as
# its own user (munged refuses root without --force).
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
fi
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
chmod 0700 /etc/munge /var/lib/munge /var/log/munge
chmod 0755 /run/munge
chmod 0400 /etc/munge/munge.key
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi

# slurm.conf: one node, one partition. KillWait: seconds between a job's SIGTERM (time
# limit, scancel, preemption, `scontrol requeue`) and its SIGKILL.
CONF=/etc/slurm/slurm.conf
MARK="# written by salsweep .ci/slurm.sh"
CPUS=$(nproc)
if [ ! -f "$CONF" ] || head -n1 "$CONF" | grep -qF "$MARK"; then
  mkdir -p /etc/slurm
  cat >"$CONF" <<EOF
$MARK
ClusterName=salsweep
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
MailProg=/bin/true
KillWait=10
MinJobAge=60
InactiveLimit=0
SchedulerParameters=sched_interval=1
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
fi
mkdir -p /var/spool/slurmctld /var/spool/slurmd /var/log/slurm

if ! pgrep -x slurmctld >/dev/null; then
  /usr/sbin/slurmctld -c  # -c: no jobs of an earlier run of this machine come back
fi
if ! pgrep -x slurmd >/dev/null; then
  /usr/sbin/slurmd -N localhost
fi

# Ready: the node answers and takes jobs (a node left down by an earlier run is resumed).
for _ in $(seq 100); do
  state=$(sinfo -h -N -n localhost -o %t 2>/dev/null || true)
  case "$state" in
    idle* | mix* | alloc*) break ;;
    down* | drain*) scontrol update NodeName=localhost State=RESUME 2>/dev/null || true ;;
  esac
  sleep 0.2
done
sinfo -h -N -o "slurm: node %N, %c CPUs, %t" || true
state=$(sinfo -h -N -n localhost -o %t 2>/dev/null || true)
case "$state" in
  idle* | mix* | alloc*) ;;
  *)
    echo "slurm.sh: the node is not ready (state: ${state:-none}); logs in /var/log/slurm" >&2
    exit 1
    ;;
esac
