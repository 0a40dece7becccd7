#!/usr/bin/env bash
# Container start-up cost: `/bin/true` in a busybox rootfs through petrel run, bwrap, ch-run
# and runc, beside the floor of creating the same namespaces with unshare(1), in one
# hyperfine run. Not a test: it prints a table (and writes bench/out/startup.md).
#
# Usage: bench/startup.sh [PETREL_BINARY]   (default: the static release build of
#        scripts/build-release.sh)
# Environment: PETREL_BASELINE=BINARY adds an earlier build to the same run, to show a
#        change's effect beside the peers.
# Needs: hyperfine, busybox-static, bubblewrap, charliecloud-runtime (ch-run), runc, util-linux.
set -euo pipefail
cd "$(dirname "$0")/.."
petrel=$(realpath "${1:-$(bash scripts/build-release.sh)}")
work=$(mktemp -d /tmp/petrel-bench-XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
bash scripts/make-busybox-rootfs.sh "$work/rootfs"
rootfs="$work/rootfs"

export USER=${USER:-$(id -un)}  # ch-run refuses to start without it
commands=(-n "unshare (floor)" "unshare --user --map-root-user --mount --pid --fork /bin/true")
commands+=(-n "petrel run" "$petrel run $rootfs -- /bin/true")
if [ -n "${PETREL_BASELINE:-}" ]; then
  commands+=(-n "petrel run (baseline)" "$(realpath "$PETREL_BASELINE") run $rootfs -- /bin/true")
fi
if command -v bwrap >/dev/null; then
  commands+=(-n "bwrap" "bwrap --unshare-user --unshare-pid --unshare-ipc --unshare-uts --ro-bind $rootfs / --proc /proc --dev /dev --tmpfs /tmp /bin/true")
fi
if command -v ch-run >/dev/null; then
  commands+=(-n "ch-run" "ch-run $rootfs -- /bin/true")
fi
if command -v runc >/dev/null && [ "$(id -u)" -eq 0 ]; then
  mkdir -p "$work/bundle"
  (cd "$work/bundle" && runc spec)
  python3 - "$work/bundle/config.json" "$rootfs" <<'PY'
import json, sys
path = sys.argv[1]
spec = json.load(open(path))
spec["root"] = {"path": sys.argv[2], "readonly": True}
spec["process"]["args"] = ["/bin/true"]
spec["process"]["terminal"] = False
json.dump(spec, open(path, "w"))
PY
  commands+=(-n "runc run" "runc --root $work/runc-state run --bundle $work/bundle petrel-bench-$$")
fi

mkdir -p bench/out
hyperfine --warmup 20 --runs "${RUNS:-300}" -N \
  --export-markdown bench/out/startup.md --export-json bench/out/startup.json \
  "${commands[@]}"
cat bench/out/startup.md
# The goal is stated in medians: print them, and each one's ratio to the floor.
python3 - bench/out/startup.json <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
floor = results[0]["median"]
print("\nmedians:")
for r in results:
    print(f"  {r['command']:<18} {r['median'] * 1000:6.2f} ms  {r['median'] / floor:5.2f}x floor")
PY
