#!/usr/bin/env bash
# Petrel's quick start, with no network: builds petrel, builds a small image from the host's
# static busybox, and runs a handful of container jobs with the embedded rootless runtime.
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

step "a cluster of 5 jobs, each with its own scratch directory at /srv"
for proc in 0 1 2 3 4; do
  mkdir -p "$work/jobs/$proc"
  "$petrel" run --scratch "$work/jobs/$proc" --memory 64m --cpus 1 --name "quickstart_1_$proc" \
    --stats-json "$work/jobs/$proc/stats.json" "$work/busybox" -- \
    sh -c "echo job $proc of cluster 1 ran in \$(pwd) > result.txt; seq 1 $((proc * 1000 + 1)) | wc -l >> result.txt"
  echo "job 1.$proc: exit $? -> $(tr '\n' ' ' < "$work/jobs/$proc/result.txt")"
done

step "a job that exceeds its memory limit is reported, not left as a bare exit 137"
"$petrel" run --memory 16m "$work/busybox" -- sh -c 'a=x; while true; do a="$a$a"; done' || echo "exit status $?"

echo
echo "Done. Results are under $work/jobs; try: $petrel run --help"
