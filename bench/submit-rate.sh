#!/usr/bin/env bash
# How fast jobs are enqueued, and what a queue of idle jobs costs the daemon: PROCS held
# container jobs (`queue PROCS` with `hold = true`, so none starts) submitted with one
# `petrel submit` to a running pool, timed alone, then the pool daemon's resident memory.
# The peers are a local Slurm's: one `sbatch --array` of the same size (Slurm keeps a
# pending array as a single record, so this is one message, not PROCS jobs), and separate
# `sbatch` calls, which is what PROCS independent jobs cost there. Not a test: it prints a
# table (and writes bench/out/submit-rate.txt). The issue's goal for petrel: >= 100,000
# jobs/s enqueued and <= 200 MiB RSS with 100,000 idle jobs.
#
# Usage: bench/submit-rate.sh [-n PROCS] [-r RUNS] [-i COUNT] [-s SIDES]
#   -n PROCS   jobs per submission (default 100000)
#   -r RUNS    timed runs per side, each into a fresh queue; the median is shown (default 3)
#   -i COUNT   separate sbatch calls for slurm-sbatch (default 5000; they run $(nproc)*2 at
#              a time, as a script submitting in parallel would)
#   -s SIDES   comma-separated, from petrel, slurm-array, slurm-sbatch (default: all)
# Environment: PETREL (the petrel binary; default: scripts/build-release.sh builds it),
#   SLURMBENCH_DIR and SLURMBENCH_PORT (see bench/slurm/start.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

usage() { sed -n '11,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
procs=100000 runs=3 individual=5000 sides=petrel,slurm-array,slurm-sbatch
while getopts "n:r:i:s:h" opt; do
  case $opt in
    n) procs=$OPTARG ;;
    r) runs=$OPTARG ;;
    i) individual=$OPTARG ;;
    s) sides=$OPTARG ;;
    *) usage ;;
  esac
done
[[ $procs =~ ^[1-9][0-9]*$ && $runs =~ ^[1-9][0-9]*$ && $individual =~ ^[1-9][0-9]*$ ]] || usage

work=$(mktemp -d /tmp/petrel-submit-rate-XXXXXX)
chmod 755 "$work"
started_slurm=0 petrel_pool_dir=
cleanup() {
  local rc=$?
  if [ -n "$petrel_pool_dir" ]; then
    PETREL_POOL_DIR=$petrel_pool_dir "$petrel" pool stop >/dev/null 2>&1 || true
  fi
  if [ "$started_slurm" = 1 ]; then
    bash "$repo/bench/slurm/stop.sh" || true
  elif [ -n "${SLURM_CONF:-}" ]; then
    scancel --name=petrel-submit-rate >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

note() { echo "submit-rate: $*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", b - a }'; }
# VmRSS and VmHWM of PID in KiB, as "RSS HWM".
memory() { awk '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } END { print r, h }' "/proc/$1/status"; }

bash scripts/make-busybox-rootfs.sh "$work/rootfs"
rootfs=$work/rootfs
export USER=${USER:-$(id -un)}
results=$work/results # lines: SIDE JOBS SECONDS RSS_BEFORE_KIB RSS_KIB HWM_KIB

# --- petrel ------------------------------------------------------------------------------
petrel_usable() {
  petrel=${PETREL:-$(bash scripts/build-release.sh)}
  [ -x "$petrel" ] || { note "skipping petrel: $petrel is not executable"; return 1; }
  if ! "$petrel" --help 2>/dev/null | grep -qE '^ +pool '; then
    note "skipping petrel: this build has no pool (petrel pool)"
    return 1
  fi
}

# The pid of the pool daemon serving PETREL_POOL_DIR: from `petrel pool status --json`, else
# the `petrel pool run` process whose environment names that directory.
petrel_daemon_pid() {
  local pid proc
  pid=$("$petrel" pool status --json 2>/dev/null |
    python3 -c 'import json, sys; print(json.load(sys.stdin).get("pid") or "")' 2>/dev/null || true)
  if [ -z "$pid" ]; then
    for proc in /proc/[0-9]*; do
      tr '\0' ' ' < "$proc/cmdline" 2>/dev/null | grep -qE '^[^ ]*petrel[^ ]* pool( run)? $' || continue
      tr '\0' '\n' < "$proc/environ" 2>/dev/null | grep -qxF "PETREL_POOL_DIR=$PETREL_POOL_DIR" || continue
      pid=${proc#/proc/}
      break
    done
  fi
  if [ -z "$pid" ] || [ ! -d "/proc/$pid" ]; then
    note "cannot find the pool daemon's pid"
    return 1
  fi
  echo "$pid"
}

# Waits until the daemon PID has finished starting: for a second or more after `pool
# start` it probes its container runtimes with test containers (its child processes),
# which would compete with the submission for the CPU. Settled: no child process and
# (almost) no CPU used by the daemon, three times in a row 0.2 s apart.
petrel_settle() {
  local pid=$1 quiet=0 last now i
  last=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
  for ((i = 0; i < 300 && quiet < 3; i++)); do
    sleep 0.2
    now=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
    if [ -z "$(cat /proc/"$pid"/task/*/children 2>/dev/null | tr -d ' ')" ] && [ $((now - last)) -le 1 ]; then
      quiet=$((quiet + 1))
    else
      quiet=0
    fi
    last=$now
  done
  [ "$quiet" -ge 3 ] || note "the pool daemon is still busy a minute after starting; timing anyway"
}

petrel_run() {
  local i=$1 pid t0 t1 secs held mem before
  # A fresh pool per run: each measures PROCS jobs into an empty queue.
  petrel_pool_dir=$work/pool$i
  export PETREL_POOL_DIR=$petrel_pool_dir
  "$petrel" pool start >/dev/null
  pid=$(petrel_daemon_pid)
  petrel_settle "$pid"
  before=$(memory "$pid")
  before=${before%% *}
  cat > "$work/held.sub" <<EOF
universe = container
container_image = $rootfs
executable = /bin/true
transfer_executable = false
hold = true
queue $procs
EOF
  t0=$(now)
  "$petrel" submit "$work/held.sub" >/dev/null
  t1=$(now)
  secs=$(elapsed "$t0" "$t1")
  mem=$(memory "$pid")
  held=$("$petrel" q -hold -af ProcId | wc -l)
  [ "$held" -eq "$procs" ] || { note "petrel run $i: $held of $procs jobs are held in the queue"; return 1; }
  note "petrel run $i: $procs jobs in $(printf %.3f "$secs") s, daemon RSS/HWM KiB $mem"
  echo "petrel $procs $secs $before $mem" >> "$results"
  "$petrel" pool stop >/dev/null
  petrel_pool_dir=
  rm -rf "$work/pool$i"
}

# --- Slurm -------------------------------------------------------------------------------
# shellcheck source=bench/slurm/common.sh
. bench/slurm/common.sh
slurm_ready=0
slurm_up() {
  [ "$slurm_ready" = 1 ] && return 0
  slurmbench_running || started_slurm=1
  SLURM_CONF=$(bash bench/slurm/start.sh)
  export SLURM_CONF
  slurm_ready=1
}
slurmctld_pid() { slurmbench_pid "$SLURMBENCH_DIR/run/slurmctld.pid" slurmctld; }

# Cancels this script's jobs and waits until slurmctld has forgotten them.
slurm_clear() {
  scancel --name=petrel-submit-rate
  local i
  for ((i = 0; i < 600; i++)); do
    [ -z "$(squeue -h --name=petrel-submit-rate -o %i | head -n 1)" ] && return 0
    sleep 0.1
  done
  note "slurm: jobs still queued 60 s after scancel"
}

slurm_array_run() {
  local i=$1 n=$procs t0 t1 jid count max before
  max=$(scontrol show config | sed -n 's/^MaxArraySize *= *//p')
  if [ "$n" -ge "$max" ]; then
    note "slurm-array: MaxArraySize is $max, submitting $((max - 1)) tasks"
    n=$((max - 1))
  fi
  before=$(memory "$(slurmctld_pid)")
  before=${before%% *}
  t0=$(now)
  jid=$(sbatch --parsable --hold --job-name=petrel-submit-rate --array=0-$((n - 1)) \
    --output=/dev/null --error=/dev/null --wrap "ch-run $rootfs -- /bin/true")
  t1=$(now)
  jid=${jid%%;*}
  count=$(squeue -h -r -j "$jid" -o %i | wc -l)
  [ "$count" -eq "$n" ] || { note "slurm-array run $i: $count of $n tasks queued"; return 1; }
  local secs mem
  secs=$(elapsed "$t0" "$t1")
  mem=$(memory "$(slurmctld_pid)")
  note "slurm-array run $i: $n tasks in $(printf %.3f "$secs") s, slurmctld RSS/HWM KiB $mem"
  echo "slurm-array $n $secs $before $mem" >> "$results"
  slurm_clear
}

slurm_sbatch_run() {
  local i=$1 t0 t1 count secs mem before
  before=$(memory "$(slurmctld_pid)")
  before=${before%% *}
  t0=$(now)
  # shellcheck disable=SC2016  # $0 is the job command, expanded by sh -c
  seq "$individual" | xargs -P "$(($(nproc) * 2))" -n 1 sh -c \
    'sbatch --parsable --hold --job-name=petrel-submit-rate --output=/dev/null --error=/dev/null --wrap "$0" >/dev/null' \
    "ch-run $rootfs -- /bin/true"
  t1=$(now)
  count=$(squeue -h --name=petrel-submit-rate -o %i | wc -l)
  [ "$count" -eq "$individual" ] || { note "slurm-sbatch run $i: $count of $individual jobs queued"; return 1; }
  secs=$(elapsed "$t0" "$t1")
  mem=$(memory "$(slurmctld_pid)")
  note "slurm-sbatch run $i: $individual jobs in $(printf %.2f "$secs") s, slurmctld RSS/HWM KiB $mem"
  echo "slurm-sbatch $individual $secs $before $mem" >> "$results"
  slurm_clear
}

: > "$results"
IFS=, read -ra wanted <<<"$sides"
for side in "${wanted[@]}"; do
  case $side in
    petrel)
      petrel_usable || continue
      for ((r = 1; r <= runs; r++)); do petrel_run "$r"; done
      ;;
    slurm-array | slurm-sbatch)
      slurm_up
      for ((r = 1; r <= runs; r++)); do "${side/-/_}_run" "$r"; done
      ;;
    *) note "unknown side $side"; usage ;;
  esac
done

mkdir -p bench/out
python3 - "$results" <<'PY' | tee bench/out/submit-rate.txt
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    side, jobs, secs, before, rss, hwm = line.split()
    runs.setdefault(side, []).append((int(jobs), float(secs), int(before), int(rss), int(hwm)))
notes = {
    "petrel": "petrel submit of held jobs; the pool daemon's memory",
    "slurm-array": "one sbatch --array, kept as one record; slurmctld's memory",
    "slurm-sbatch": "separate sbatch calls, in parallel; slurmctld's memory",
}
print("RSS: after the submission (median); KiB/job: its growth over the submission per job")
print(f"{'side':<13} {'jobs':>7} {'median s':>9} {'jobs/s':>10} {'RSS MiB':>8} {'HWM MiB':>8} {'KiB/job':>8}  what")
for side, rs in runs.items():
    jobs = rs[0][0]
    med = statistics.median(r[1] for r in rs)
    rss = statistics.median(r[3] for r in rs) / 1024
    hwm = max(r[4] for r in rs) / 1024
    per_job = statistics.median((r[3] - r[2]) / r[0] for r in rs)
    print(f"{side:<13} {jobs:>7} {med:>9.3f} {jobs / med:>10.0f} {rss:>8.1f} {hwm:>8.1f} {per_job:>8.2f}  {notes[side]}")
if "petrel" in runs:
    rs = runs["petrel"]
    rate = rs[0][0] / statistics.median(r[1] for r in rs)
    rss = statistics.median(r[3] for r in rs) / 1024
    print(f"goal: >= 100000 jobs/s ({'met' if rate >= 1e5 else 'missed'}), "
          f"RSS <= 200 MiB with {rs[0][0]} idle jobs ({'met' if rss <= 200 else 'missed'})")
PY
