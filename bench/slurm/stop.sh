#!/usr/bin/env bash
# Stops the private Slurm that bench/slurm/start.sh started: cancels its jobs, stops
# slurmd, slurmctld and munged by the pids in their pid files (each checked to be that
# daemon), ends any job step daemon still holding the state directory's log open, and
# removes the state directory. Safe to run when nothing is running or only part is.
#
# Usage: bench/slurm/stop.sh
# Environment: SLURMBENCH_DIR (default /tmp/petrel-slurmbench); SLURMBENCH_KEEP=1 keeps the
# state directory (logs, job-completion file) for a look afterwards.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/slurm/common.sh
. "$here/common.sh"
dir=$SLURMBENCH_DIR

# Sends SIGTERM, waits up to 10 s, then SIGKILL.
stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    slurmbench_alive "$pid" || return 0
    sleep 0.1
  done
  echo "slurmbench: pid $pid ignored SIGTERM, killing it" >&2
  kill -KILL "$pid" 2>/dev/null || true
}

if [ -f "$SLURMBENCH_CONF" ] && command -v squeue >/dev/null && slurmbench_ctld_up; then
  export SLURM_CONF=$SLURMBENCH_CONF
  jobs=$(squeue -h -o %F | sort -u)
  if [ -n "$jobs" ]; then
    # shellcheck disable=SC2086
    scancel $jobs 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      [ -z "$(squeue -h -t R,CG -o %i)" ] && break
      sleep 0.1
    done
  fi
fi

# slurmd first, so it does not report the node down to slurmctld; munged last, as both
# need it to talk. Then anything of ours whose pid file was stale or missing.
for daemon in slurmd slurmctld munged; do
  if pid=$(slurmbench_pid "$dir/run/$daemon.pid" "$daemon"); then
    stop_pid "$pid"
  fi
done
for pid in $(slurmbench_daemon_pids); do
  stop_pid "$pid"
done

# A job step daemon outlives slurmd; ours are the ones with our slurmd log open.
if [ -d "$dir/log" ]; then
  for comm in /proc/[0-9]*/comm; do
    [ "$(cat "$comm" 2>/dev/null)" = slurmstepd ] || continue
    pid=${comm#/proc/}
    pid=${pid%/comm}
    if find "/proc/$pid/fd" -lname "$dir/*" -print -quit 2>/dev/null | grep -q .; then
      stop_pid "$pid"
    fi
  done
fi

# Remove only a directory that start.sh made: never /, never something else's.
if [ "${SLURMBENCH_KEEP:-0}" != 1 ] && [ "$dir" != / ] &&
  { [ -f "$dir/slurm.conf" ] || [ -d "$dir/run" ]; }; then
  rm -rf "$dir"
fi
