#!/usr/bin/env bash
# End-to-end throughput of short container jobs: the same N jobs (`/bin/true` in a busybox
# rootfs) through a local Slurm, as one job array whose tasks start the container with
# ch-run (and, as a second variant, bwrap), and through petrel's pool, as one cluster of
# container-universe jobs. Each side's wall time runs from submission until every job has
# finished, and every job is checked to have exited 0. Not a test: it prints a table
# (and writes bench/out/pool-throughput.txt). The issue's goal: petrel >= 3x Slurm's jobs/s.
#
# Usage: bench/pool-throughput.sh [-n JOBS] [-r RUNS] [-s SIDES]
#   -n JOBS    jobs per run (default 1000)
#   -r RUNS    timed runs per side; the table shows each and the median (default 3)
#   -s SIDES   comma-separated, from slurm-ch-run, slurm-bwrap, petrel
#              (default: all three; a side whose tools are missing is skipped with a note)
# Environment: PETREL (the petrel binary; default: scripts/build-release.sh builds it),
#   SLURMBENCH_DIR and SLURMBENCH_PORT (see bench/slurm/start.sh), KEEP=1 (keep the work
#   directory: rootfs, submit files, event logs).
#
# The Slurm side is the private one-node Slurm of bench/slurm/start.sh (started here if it is
# not running, and then stopped at the end): both sides get the machine's real cores, one
# per job. Each side first runs a few untimed jobs, so neither pays for cold caches or its
# daemon's start-up, and the timed runs alternate between the sides, round by round. Slurm's end is read from its job-completion log (one line per job with
# its state and exit code); petrel's from the job event log (`petrel wait`, then one
# "Job terminated" event with "return value 0" per job).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

usage() { sed -n '9,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
jobs=1000 runs=3 sides=slurm-ch-run,slurm-bwrap,petrel
while getopts "n:r:s:h" opt; do
  case $opt in
    n) jobs=$OPTARG ;;
    r) runs=$OPTARG ;;
    s) sides=$OPTARG ;;
    *) usage ;;
  esac
done
[[ $jobs =~ ^[1-9][0-9]*$ && $runs =~ ^[1-9][0-9]*$ ]] || usage
warmup=10

work=$(mktemp -d /tmp/petrel-pool-throughput-XXXXXX)
chmod 755 "$work"
started_slurm=0 petrel_pool=0
cleanup() {
  local rc=$?
  if [ "$petrel_pool" = 1 ]; then
    "$petrel" pool stop >/dev/null 2>&1 || true
  fi
  if [ "$started_slurm" = 1 ]; then
    bash "$repo/bench/slurm/stop.sh" || true
  fi
  if [ "${KEEP:-0}" = 1 ]; then note "kept $work"; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

note() { echo "pool-throughput: $*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", b - a }'; }

bash scripts/make-busybox-rootfs.sh "$work/rootfs"
rootfs=$work/rootfs
export USER=${USER:-$(id -un)} # ch-run refuses to start without it
results=$work/results          # lines: SIDE SECONDS

# --- Slurm -------------------------------------------------------------------------------
# shellcheck source=bench/slurm/common.sh
. bench/slurm/common.sh

slurm_ready=0
slurm_up() {
  [ "$slurm_ready" = 1 ] && return 0
  if ! slurmbench_running; then
    started_slurm=1
  fi
  SLURM_CONF=$(bash bench/slurm/start.sh)
  export SLURM_CONF
  slurm_ready=1
}

# Runs N copies of COMMAND as one array; prints the seconds from sbatch until the last task
# is in the completion log, after checking every task COMPLETED with exit code 0:0.
slurm_array() {
  local n=$1 command=$2 jid t0 t1 done_count bad
  t0=$(now)
  jid=$(sbatch --parsable --array=0-$((n - 1)) --output=/dev/null --error=/dev/null \
    --job-name=petrel-bench --wrap "$command")
  jid=${jid%%;*}
  while :; do
    done_count=$(grep -c " ArrayJobId=$jid " "$SLURMBENCH_JOBCOMP" || true)
    [ "$done_count" -ge "$n" ] && break
    sleep 0.05
  done
  t1=$(now)
  bad=$(grep " ArrayJobId=$jid " "$SLURMBENCH_JOBCOMP" |
    grep -v -c 'JobState=COMPLETED .*ExitCode=0:0' || true)
  if [ "$bad" -ne 0 ]; then
    note "slurm array $jid: $bad of $n tasks did not complete with exit code 0:"
    grep " ArrayJobId=$jid " "$SLURMBENCH_JOBCOMP" | grep -v 'JobState=COMPLETED .*ExitCode=0:0' |
      head -n 3 >&2
    return 1
  fi
  elapsed "$t0" "$t1"
}

# Installs PACKAGE if COMMAND is missing and we are root; false if it stays missing.
have() {
  local command=$1 package=$2
  command -v "$command" >/dev/null && return 0
  if [ "$(id -u)" -eq 0 ]; then
    note "installing $package"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$package" \
      >/dev/null 2>&1 || true
  fi
  command -v "$command" >/dev/null
}

# The command each Slurm array task runs for SIDE.
slurm_command() {
  case $1 in
    slurm-ch-run) echo "ch-run $rootfs -- /bin/true" ;;
    slurm-bwrap) echo "bwrap --unshare-user --unshare-pid --unshare-ipc --unshare-uts --ro-bind $rootfs / --proc /proc --dev /dev --tmpfs /tmp /bin/true" ;;
  esac
}

slurm_prepare() {
  local side=$1
  case $side in
    slurm-ch-run) have ch-run charliecloud-runtime || { note "skipping $side: no ch-run"; return 1; } ;;
    slurm-bwrap) have bwrap bubblewrap || { note "skipping $side: no bwrap"; return 1; } ;;
  esac
  slurm_up
  slurm_array "$warmup" "$(slurm_command "$side")" >/dev/null
}

# --- petrel ------------------------------------------------------------------------------
petrel_usable() {
  if [ -z "${petrel:-}" ]; then
    petrel=${PETREL:-$(bash scripts/build-release.sh)}
  fi
  [ -x "$petrel" ] || { note "skipping petrel: $petrel is not executable"; return 1; }
  if ! "$petrel" --help 2>/dev/null | grep -qE '^ +pool ' ||
    ! "$petrel" --help 2>/dev/null | grep -qE '^ +wait '; then
    note "skipping petrel: this build has no pool (petrel pool/wait)"
    return 1
  fi
}

# Submits N container jobs with their event log in DIR; prints the seconds from submit until
# `petrel wait` returned, after checking the log has N terminations with return value 0.
petrel_cluster() {
  local n=$1 dir=$2 t0 t1 ended ok
  mkdir -p "$dir"
  cat > "$dir/jobs.sub" <<EOF
universe = container
container_image = $rootfs
executable = /bin/true
transfer_executable = false
log = $dir/jobs.log
queue $n
EOF
  t0=$(now)
  "$petrel" submit "$dir/jobs.sub" >/dev/null
  "$petrel" wait "$dir/jobs.log" >/dev/null
  t1=$(now)
  ended=$(grep -c '^005 ' "$dir/jobs.log" || true)
  ok=$(grep -c 'Normal termination (return value 0)' "$dir/jobs.log" || true)
  if [ "$ended" -ne "$n" ] || [ "$ok" -ne "$n" ]; then
    note "petrel: $ended of $n jobs terminated, $ok with return value 0 (log $dir/jobs.log):"
    grep -A2 -E '^(005|012|009) ' "$dir/jobs.log" | grep -v 'return value 0' | head -n 6 >&2
    return 1
  fi
  elapsed "$t0" "$t1"
}

petrel_prepare() {
  petrel_usable || return 1
  # A private pool with the machine's cores: nothing else's jobs, nothing left behind.
  export PETREL_POOL_DIR=$work/pool
  "$petrel" pool start >/dev/null
  petrel_pool=1
  petrel_cluster "$warmup" "$work/petrel-warmup" >/dev/null
}

# --- the runs ----------------------------------------------------------------------------
: > "$results"
IFS=, read -ra wanted <<<"$sides"
ready=()
for side in "${wanted[@]}"; do
  case $side in
    slurm-ch-run | slurm-bwrap) slurm_prepare "$side" && ready+=("$side") ;;
    petrel) petrel_prepare && ready+=("$side") ;;
    *) note "unknown side $side"; usage ;;
  esac
done
# Round by round, each side once a round, so that a change in the machine's load (other
# work on a shared machine) falls on every side alike.
for ((round = 1; round <= runs; round++)); do
  for side in "${ready[@]}"; do
    case $side in
      petrel) secs=$(petrel_cluster "$jobs" "$work/petrel-run$round") ;;
      *) secs=$(slurm_array "$jobs" "$(slurm_command "$side")") ;;
    esac
    note "$side run $round: $jobs jobs in $(printf %.2f "$secs") s"
    echo "$side $secs" >> "$results"
  done
done

mkdir -p bench/out
python3 - "$results" "$jobs" "$(nproc)" <<'PY' | tee bench/out/pool-throughput.txt
import statistics, sys
path, jobs, cpus = sys.argv[1], int(sys.argv[2]), sys.argv[3]
runs = {}
for line in open(path):
    side, secs = line.split()
    runs.setdefault(side, []).append(float(secs))
print(f"{jobs} jobs of /bin/true in a busybox container per run, {cpus} cpus, one job per cpu")
print(f"{'side':<14} {'runs (s)':<26} {'median s':>9} {'jobs/s':>8}")
rate = {}
for side, secs in runs.items():
    med = statistics.median(secs)
    rate[side] = jobs / med
    shown = " ".join(f"{s:.2f}" for s in secs)
    print(f"{side:<14} {shown:<26} {med:>9.2f} {rate[side]:>8.1f}")
slurm = {s: r for s, r in rate.items() if s.startswith("slurm")}
if "petrel" in rate and slurm:
    best = max(slurm, key=slurm.get)
    ratio = rate["petrel"] / slurm[best]
    verdict = "meets" if ratio >= 3 else "misses"
    print(f"petrel / {best} (the faster Slurm): {ratio:.2f}x ({verdict} the 3x goal)")
PY
