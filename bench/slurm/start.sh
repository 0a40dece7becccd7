#!/usr/bin/env bash
# Starts a private one-node Slurm on this machine, the peer the pool benchmarks measure
# petrel against: munged, slurmctld and slurmd as root, with every file (config, munge key,
# state, spool, logs, pid files, job-completion log) under one state directory, so it
# touches nothing in /etc and can run beside a system Slurm on other ports. Prints the
# path of its slurm.conf on stdout (point SLURM_CONF at it); progress goes to stderr.
#
# Usage: bench/slurm/start.sh
# Environment:
#   SLURMBENCH_DIR    state directory (default /tmp/petrel-slurmbench)
#   SLURMBENCH_PORT   first slurmctld port; slurmctld listens on it and the next three,
#                     slurmd on the one after (default 16817)
#
# Idempotent: if the daemons in SLURMBENCH_DIR are already up and the node answers, it only
# prints the config path. Stale pid files and half-started daemons are cleaned up first
# (bench/slurm/stop.sh). Installs slurm-wlm and munge with apt-get when they are missing.
#
# The configuration is one a site would use for many short jobs on this node (after
# Slurm's "High Throughput Computing Administration Guide"), with nothing that trades away
# correctness: the node has the machine's real cores and memory, each job gets its
# cores and a memory share, and every job's end is recorded with its exit code.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/slurm/common.sh
. "$here/common.sh"

slurmbench_install

if slurmbench_running; then
  echo "$SLURMBENCH_CONF"
  exit 0
fi
# Something is half up (stale pid files, a daemon without its peers): start clean.
bash "$here/stop.sh" >&2

dir=$SLURMBENCH_DIR
mkdir -p "$dir"/{state,spool,log,munge,run}
# munged refuses a key, socket or log directory that others can write to.
chmod 700 "$dir/munge"
chmod 755 "$dir" "$dir/run"

# --- munge, with its own key and socket ----------------------------------------------
mungekey --create --keyfile="$dir/munge/munge.key" --force 2>/dev/null
chmod 400 "$dir/munge/munge.key"
# Ten threads, as the HTC guide suggests: each job start and end costs munge credentials.
munged --socket="$SLURMBENCH_MUNGE_SOCKET" --key-file="$dir/munge/munge.key" \
  --pid-file="$dir/run/munged.pid" --log-file="$dir/log/munged.log" \
  --seed-file="$dir/munge/munged.seed" --num-threads=10
slurmbench_wait_for "munged" 10 test -S "$SLURMBENCH_MUNGE_SOCKET"

# --- slurm.conf ------------------------------------------------------------------------
# The node's shape from slurmd itself (sockets, cores, threads, memory), named localhost.
detected=$(slurmd -C | sed -n 's/^NodeName=[^ ]* //p')
cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$detected")
mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$detected")
if [ -z "$cpus" ] || [ -z "$mem" ]; then
  echo "slurmd -C printed no node line" >&2
  exit 1
fi
# Leave a little memory to the system, as a site would.
mem=$((mem > 2048 ? mem - 1024 : mem))
# shellcheck disable=SC2001  # a pattern with a repeat, which ${//} cannot say
node="NodeName=localhost $(sed 's/ *RealMemory=[0-9]*//' <<<"$detected") RealMemory=$mem"
port=$SLURMBENCH_PORT

cat > "$SLURMBENCH_CONF" <<EOF
# Written by bench/slurm/start.sh: a private one-node Slurm for petrel's benchmarks.
ClusterName=petrelbench
SlurmctldHost=localhost
SlurmctldPort=$port-$((port + 3))
SlurmdPort=$((port + 4))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$SLURMBENCH_MUNGE_SOCKET
CredType=cred/munge

StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info

# One node with the machine's real cores and memory; jobs get whole cores and a memory share.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default, CR_Core_Memory gives each job the whole node's memory, so only one
# job could run at a time. 1 GiB per core is a common site default (HTCondor's is similar).
DefMemPerCPU=1024
# No cgroups on this host's v1 hybrid: track a job's processes through /proc.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2

# Throughput settings (HTC guide): FIFO scheduling of short jobs without the backfill
# plugin's overhead, no accounting, quick purge of finished job records, room for large
# job arrays. Completions go to a text file: one line per job with its state and exit
# code, which is how the benchmarks check every job succeeded.
SchedulerType=sched/builtin
PriorityType=priority/basic
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$SLURMBENCH_JOBCOMP
MinJobAge=5
MaxJobCount=200000
MaxArraySize=100001
# Scheduling runs at once on every job submission and end rather than batching them:
# with one node of a few cores, a short job's slot is free again after milliseconds and
# any delay leaves it idle (batch_sched_delay defaults to 3 s).
SchedulerParameters=${SLURMBENCH_SCHEDULER_PARAMETERS:-batch_sched_delay=0}
# An epilog, as nearly every site has. It matters for short jobs: with none, slurmd answers
# a job's termination with "already complete" and slurmctld only reschedules the freed
# cores on its next one-second background pass; with one, slurmd reports the epilog's end
# and slurmctld schedules at once. On this machine that is ~2 against ~50 jobs/s.
Epilog=${SLURMBENCH_EPILOG-/bin/true}

$node State=UNKNOWN
PartitionName=bench Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
chmod 644 "$SLURMBENCH_CONF"
echo "slurmbench: $cpus cpus, ${mem} MiB, config $SLURMBENCH_CONF" >&2

# --- the daemons -----------------------------------------------------------------------
export SLURM_CONF=$SLURMBENCH_CONF
# The HTC guide asks for high open-file limits for slurmctld.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
slurmctld -f "$SLURMBENCH_CONF" -c -i
slurmbench_wait_for "slurmctld" 30 slurmbench_ctld_up
slurmd -f "$SLURMBENCH_CONF" -N localhost
slurmbench_wait_for "node localhost idle" 60 slurmbench_node_idle
echo "$SLURMBENCH_CONF"
