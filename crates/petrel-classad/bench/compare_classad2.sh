#!/usr/bin/env bash
# Times the same symmetric matches (job Requirements and slot Requirements,
# ads generated identically on both sides) in petrel and in HTCondor's own
# ClassAd library (classad2, through its Python bindings), in one run.
#
# usage: crates/petrel-classad/bench/compare_classad2.sh [JOBS] [SLOTS]
# Needs the oracle venv (scripts/test-deps.sh) or PETREL_ORACLE_PY25.
set -euo pipefail
cd "$(dirname "$0")/../../.."
JOBS=${1:-1000}
SLOTS=${2:-1000}
PY=${PETREL_ORACLE_PY25:-$PWD/.cache/venvs/htcondor25/bin/python}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/targets/classad}

cargo build --quiet --release -p petrel-classad --example match_pool
echo "== petrel (1 thread)"
"$CARGO_TARGET_DIR/release/examples/match_pool" "$JOBS" "$SLOTS" 1
echo "== petrel (2 threads)"
"$CARGO_TARGET_DIR/release/examples/match_pool" "$JOBS" "$SLOTS" 2

echo "== HTCondor classad2 $("$PY" -c 'import classad2; print(classad2.version())') (1 thread)"
"$PY" - "$JOBS" "$SLOTS" <<'PYEOF'
import sys, time
import classad2 as classad

nj, ns = int(sys.argv[1]), int(sys.argv[2])
jobs = [classad.ClassAd(
    '[ ClusterId = %d; ProcId = 0; Owner = "user%d"; RequestMemory = %d; RequestCpus = %d; RequestDisk = 1048576; '
    'JobUniverse = 5; Cmd = "/bin/sleep"; ContainerImage = "docker://alpine:3"; '
    'Requirements = TARGET.Memory >= MY.RequestMemory && TARGET.Cpus >= MY.RequestCpus && TARGET.HasDocker ]'
    % (i, i % 7, 256 << (i % 6), 1 + i % 4)) for i in range(nj)]
slots = [classad.ClassAd(
    '[ Name = "slot%d@node%d"; Memory = %d; Cpus = %d; Disk = 100000000; HasDocker = %s; Arch = "X86_64"; '
    'OpSys = "LINUX"; Start = true; Requirements = START && TARGET.RequestMemory <= MY.Memory ]'
    % (i % 16, i // 16, 1024 << (i % 5), 1 + i % 8, "true" if i % 10 != 0 else "false")) for i in range(ns)]
t = time.perf_counter()
n = sum(1 for j in jobs for s in slots if j.symmetricMatch(s))
secs = time.perf_counter() - t
print("%d jobs x %d slots on 1 thread: %d matches, %.3f s (%.0f ns per pair, including Python call overhead)"
      % (nj, ns, n, secs, secs * 1e9 / (nj * ns)))

# Expression evaluation without Python-side matching loops: one expression
# evaluated against one ad many times.
ad = jobs[0]
e = classad.ExprTree('RequestMemory * 2 + RequestCpus > 100 && strcat(Owner, "x") == "user0x"')
t = time.perf_counter()
for _ in range(100000):
    e.eval(ad)
secs = time.perf_counter() - t
print("expression eval: 100000 evaluations in %.3f s (%.0f ns each, including Python call overhead)" % (secs, secs * 1e4))
PYEOF
