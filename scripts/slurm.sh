#!/usr/bin/env bash
# A single-node Slurm on this machine for the tests marked `slurm`: the cluster `ccdcgan-test`, one partition `gpu`
# (the default) whose node offers one generic `gpu` (a stand-in device, so `#SBATCH --gres=gpu:1` is accepted),
# munge authentication, no accounting. Installs Debian's slurm-wlm and munge when they are missing, writes
# /etc/slurm/slurm.conf only where there is none (or it is this script's), and starts munged, slurmctld and slurmd.
# Needs root; safe to run again (a running test cluster is left as it is). Exit 0: the cluster answers; 1: it could
# not be set up here (the message says why; the `slurm` tests are then skipped).
set -euo pipefail
CLUSTER=ccdcgan-test
CONF=/etc/slurm/slurm.conf

cluster_answers() {
    local config states
    config=$(scontrol show config 2>/dev/null) && states=$(sinfo -h -o %T 2>/dev/null) || return 1
    grep -q "^ClusterName *= *$CLUSTER\$" <<<"$config" && grep -qE "idle|mix|alloc" <<<"$states"
}

if cluster_answers; then
    echo "slurm.sh: the test cluster $CLUSTER is up"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "slurm.sh: not root, so no test Slurm cluster (run as root, or start one yourself: see docs/testing.md)"
    exit 1
fi
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    if ! command -v apt-get >/dev/null; then
        echo "slurm.sh: slurm-wlm and munge are not installed and there is no apt-get to install them"
        exit 1
    fi
    echo "slurm.sh: installing slurm-wlm and munge with apt"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi
if [ -e "$CONF" ] && ! grep -q "^ClusterName=$CLUSTER\$" "$CONF"; then
    echo "slurm.sh: $CONF belongs to another cluster; not touching it"
    exit 1
fi

host=$(hostname -s)
memory=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2))
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --force
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
chmod 0700 /etc/munge
chmod 0400 /etc/munge/munge.key
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged

cat >"$CONF" <<CONF
# Written by aiida-ccdcgan's scripts/slurm.sh: a single-node test cluster.
ClusterName=$CLUSTER
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
GresTypes=gpu
KillWait=5
OverTimeLimit=0
MinJobAge=600
NodeName=$host CPUs=$(nproc) RealMemory=$memory Gres=gpu:1 State=UNKNOWN
PartitionName=gpu Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
cat >/etc/slurm/gres.conf <<CONF
# Written by aiida-ccdcgan's scripts/slurm.sh: a stand-in device, so that jobs may ask for --gres=gpu:1.
AutoDetect=off
NodeName=$host Name=gpu File=/dev/null
CONF

pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 30); do
    if cluster_answers; then
        echo "slurm.sh: the test cluster $CLUSTER is up (node $host, partition gpu)"
        exit 0
    fi
    sleep 1
done
echo "slurm.sh: Slurm did not come up; see /var/log/slurm/slurmctld.log and slurmd.log"
exit 1
