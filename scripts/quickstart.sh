#!/usr/bin/env bash
# Petrel's quick start, with no network: builds petrel, builds a small image from the host's
# static busybox, runs containers with the embedded rootless runtime, then a cluster of jobs
# through the local pool (submit, q, wait, history).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v busybox >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
  else
    echo "quickstart: needs busybox: sudo apt-get install busybox-static" >&2
    exit 1
  fi
fi
petrel=$(bash scripts/build-release.sh)
work=${PETREL_QUICKSTART_DIR:-$(mktemp -d /tmp/petrel-quickstart-XXXXXX)}
chmod 755 "$work"
bash scripts/make-busybox-rootfs.sh "$work/busybox"
echo "== image: $work/busybox ($(du -sh "$work/busybox" | cut -f1))"

step() { echo; echo "== $*"; }
step "hello from a container"
"$petrel" run "$work/busybox" -- /bin/echo "hello from petrel"

step "the job sees its own pid namespace, no capabilities, a read-only image"
"$petrel" run --hostname job0 "$work/busybox" -- sh -c \
  'echo "host=$(hostname) uid=$(id -u) pids=$(ls /proc | grep -c "^[0-9]")"; grep CapEff /proc/self/status; touch /bin/x 2>&1 || true'

step "a cluster of 5 container jobs through the local pool (petrel submit, q, wait, history)"
export PETREL_POOL_DIR="$work/pool"
cat > "$work/jobs.sub" <<EOF
universe       = container
container_image = $work/busybox
executable     = /bin/sh
arguments      = "-c 'echo job \$(Cluster).\$(Process) ran in \$PWD as uid \$(id -u); seq 1 \$(Process)001 | wc -l'"
transfer_executable = false
output         = out.\$(Process)
error          = err.\$(Process)
log            = jobs.log
request_memory = 64M
queue 5
EOF
(cd "$work" && "$petrel" submit jobs.sub && "$petrel" q -nobatch && "$petrel" wait jobs.log)
for proc in 0 1 2 3 4; do echo "out.$proc: $(tr '\n' ' ' < "$work/out.$proc")"; done
"$petrel" history -af ClusterId ProcId JobStatus ExitCode NumJobStarts

step "a job that exceeds its memory limit is reported, not left as a bare exit 137"
"$petrel" run --memory 16m "$work/busybox" -- sh -c 'a=x; while true; do a="$a$a"; done' || echo "exit status $?"

echo
"$petrel" pool stop
echo "Done. Results and the event log are under $work; try: $petrel submit -help, $petrel q -help"
