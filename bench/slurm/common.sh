# shellcheck shell=bash disable=SC2034  # the variables are for the scripts that source this
# Shared by bench/slurm/{start,stop}.sh and the benchmarks that use the private Slurm:
# where its files live and small checks on its daemons. Source it; it defines no commands
# that run on their own.

SLURMBENCH_DIR=${SLURMBENCH_DIR:-/tmp/petrel-slurmbench}
SLURMBENCH_PORT=${SLURMBENCH_PORT:-16817}
SLURMBENCH_CONF=$SLURMBENCH_DIR/slurm.conf
SLURMBENCH_JOBCOMP=$SLURMBENCH_DIR/log/jobcomp.txt
SLURMBENCH_MUNGE_SOCKET=$SLURMBENCH_DIR/run/munge.socket

# Installs the Debian packages when a command is missing (the machine may be fresh).
slurmbench_install() {
  local missing=()
  command -v slurmctld >/dev/null || missing+=(slurmctld)
  command -v slurmd >/dev/null || missing+=(slurmd)
  command -v sbatch >/dev/null || missing+=(slurm-client)
  command -v munged >/dev/null || missing+=(munge)
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "slurmbench: installing ${missing[*]}" >&2
  [ "$(id -u)" -eq 0 ] || { echo "slurmbench: need root to install ${missing[*]}" >&2; return 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    slurm-wlm munge >&2 2>&1 || {
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      slurm-wlm munge >&2
  }
}

# Whether PID is a process that has not exited (a zombie still has its /proc entry until
# its parent, often a container's init, reaps it).
slurmbench_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# The pid in FILE if it names a live process whose command is NAME, else nothing. Checking
# the name keeps a stale pid file from pointing us at an unrelated process.
slurmbench_pid() {
  local file=$1 name=$2 pid
  [ -s "$file" ] || return 1
  pid=$(tr -dc 0-9 < "$file")
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] &&
    slurmbench_alive "$pid" || return 1
  echo "$pid"
}

# Pids of the daemons started with this state directory's files on their command line
# (slurmd and slurmctld with its slurm.conf, munged with its socket), whatever their pid
# files say: a pid file can be stale or gone while the daemon still runs.
slurmbench_daemon_pids() {
  local proc cmdline
  for proc in /proc/[0-9]*; do
    case "$(cat "$proc/comm" 2>/dev/null)" in
      slurmd | slurmctld | munged) ;;
      *) continue ;;
    esac
    cmdline=$(tr '\0' ' ' < "$proc/cmdline" 2>/dev/null) || continue
    case " $cmdline" in
      *" -f $SLURMBENCH_CONF "* | *" --socket=$SLURMBENCH_MUNGE_SOCKET "*)
        slurmbench_alive "${proc#/proc/}" && echo "${proc#/proc/}" ;;
    esac
  done
}

slurmbench_node_idle() {
  [ "$(SLURM_CONF=$SLURMBENCH_CONF sinfo -h -n localhost -o %t 2>/dev/null)" = idle ]
}

slurmbench_ctld_up() {
  SLURM_CONF=$SLURMBENCH_CONF scontrol ping 2>/dev/null | grep -q 'is UP'
}

# All three daemons alive and the node schedulable (idle, or busy with jobs).
slurmbench_running() {
  [ -f "$SLURMBENCH_CONF" ] || return 1
  slurmbench_pid "$SLURMBENCH_DIR/run/munged.pid" munged >/dev/null || return 1
  slurmbench_pid "$SLURMBENCH_DIR/run/slurmctld.pid" slurmctld >/dev/null || return 1
  slurmbench_pid "$SLURMBENCH_DIR/run/slurmd.pid" slurmd >/dev/null || return 1
  slurmbench_ctld_up || return 1
  case "$(SLURM_CONF=$SLURMBENCH_CONF sinfo -h -n localhost -o %t 2>/dev/null)" in
    idle | mix | alloc | comp) return 0 ;;
    *) return 1 ;;
  esac
}

# Retries a command every 0.1 s for up to SECONDS; on time-out names what it waited for
# and shows the end of the logs.
slurmbench_wait_for() {
  local what=$1 seconds=$2 i
  shift 2
  for ((i = 0; i < seconds * 10; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "slurmbench: timed out after ${seconds}s waiting for $what" >&2
  local log
  for log in "$SLURMBENCH_DIR"/log/*.log; do
    [ -f "$log" ] && { echo "--- $log" >&2; tail -n 15 "$log" >&2; }
  done
  return 1
}
