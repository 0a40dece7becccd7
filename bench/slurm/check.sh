#!/usr/bin/env bash
# Smoke test of the private Slurm: an interactive step (srun), a batch job (sbatch --wrap)
# and a job array, each waited for and checked in the job-completion log. Starts Slurm with
# bench/slurm/start.sh if it is not running, and leaves it as it found it.
#
# Usage: bench/slurm/check.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/slurm/common.sh
. "$here/common.sh"

started=0
slurmbench_running || started=1
SLURM_CONF=$(bash "$here/start.sh")
export SLURM_CONF
work=$(mktemp -d /tmp/slurmbench-check-XXXXXX)
cleanup() {
  local rc=$?
  [ "$started" = 1 ] && bash "$here/stop.sh"
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

fail() { echo "slurmbench check: $*" >&2; exit 1; }
# Every completion record of JOB (a job or an array) says COMPLETED with exit code 0:0.
completed() {
  local job=$1 want=$2 lines
  lines=$(grep -E "(^| )(JobId|ArrayJobId)=$job " "$SLURMBENCH_JOBCOMP" || true)
  [ "$(grep -c . <<<"$lines")" -eq "$want" ] || fail "job $job: $(grep -c . <<<"$lines") of $want records"
  ! grep -v 'JobState=COMPLETED .*ExitCode=0:0' <<<"$lines" | grep -q . || fail "job $job failed: $lines"
}

[ "$(cd "$work" && srun -N1 hostname)" = "$(hostname)" ] || fail "srun hostname printed something else"

jid=$(cd "$work" && sbatch --parsable --wait --output="$work/batch.out" --wrap 'echo batch ok')
[ "$(cat "$work/batch.out")" = "batch ok" ] || fail "batch job output: $(cat "$work/batch.out")"
completed "$jid" 1

# shellcheck disable=SC2016  # expanded in the job, not here
jid=$(cd "$work" && sbatch --parsable --wait --array=0-3 --output="$work/array_%a.out" \
  --wrap 'echo task $SLURM_ARRAY_TASK_ID')
jid=${jid%%;*}
for i in 0 1 2 3; do
  [ "$(cat "$work/array_$i.out")" = "task $i" ] || fail "array task $i output: $(cat "$work/array_$i.out")"
done
completed "$jid" 4
echo "slurmbench check: srun, sbatch and a job array ran and completed"
