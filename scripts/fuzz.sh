#!/usr/bin/env bash
# Coverage-guided fuzzing of petrel's parsers of untrusted bytes.
#
#   scripts/fuzz.sh --list              the targets
#   scripts/fuzz.sh TARGET SECONDS      fuzz TARGET for SECONDS of wall-clock time
#   scripts/fuzz.sh --cmin TARGET       minimise TARGET's corpus (keeps what adds coverage)
#
# The targets are the functions of crates/petrel-fuzz (one per parser); fuzz/ builds one
# libFuzzer binary per target. Inputs that add coverage go into fuzz/corpus/TARGET/ (commit
# them after a --cmin), crashes into fuzz/artifacts/TARGET/ (not committed: minimise one with
# `cargo +nightly fuzz tmin` in fuzz/, fix the parser, and keep the reproducer in
# fuzz/regressions/TARGET/). The ordinary test suite replays corpus and regressions
# (crates/petrel-fuzz/tests/replay.rs), so CI needs none of this.
#
# Why cargo-fuzz (libFuzzer): it needs only the nightly toolchain and a C++ compiler, both
# here, and instruments Rust with rustc's own LLVM. cargo-afl would need AFL++'s LLVM plugin
# built for the LLVM of rustc; Debian's afl++ is built against an older LLVM than rustc's.
# No sanitizer: the code fuzzed is safe Rust, so AddressSanitizer would mostly cost speed on
# a shared machine; debug assertions stay on, so arithmetic overflow is a crash.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_FLAGS=(--release --debug-assertions --sanitizer none)

targets() {
  sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^petrel-fuzz-bins$'
}

usage() {
  echo "usage: $0 TARGET SECONDS | --list | --cmin TARGET" >&2
  exit 2
}

need_tools() {
  if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
  fi
  if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
  fi
}

known() {
  targets | grep -qx "$1" || {
    echo "fuzz: no target '$1'; targets: $(targets | tr '\n' ' ')" >&2
    exit 2
  }
}

count() { find "$1" -maxdepth 1 -type f 2>/dev/null | wc -l; }

case "${1:-}" in
  --list)
    targets
    exit 0
    ;;
  --cmin)
    [ $# -eq 2 ] || usage
    known "$2"
    need_tools
    before=$(count "fuzz/corpus/$2")
    (cd fuzz && cargo +nightly fuzz cmin "${FUZZ_FLAGS[@]}" "$2" "corpus/$2")
    echo "fuzz: $2 corpus minimised from $before to $(count "fuzz/corpus/$2") inputs"
    exit 0
    ;;
  ''|-*) usage ;;
esac

[ $# -eq 2 ] || usage
target=$1
seconds=$2
known "$target"
[[ "$seconds" =~ ^[0-9]+$ ]] || usage
need_tools

corpus="fuzz/corpus/$target"
artifacts="fuzz/artifacts/$target"
mkdir -p "$corpus" "$artifacts"
before=$(count "$corpus")
crashes_before=$(count "$artifacts")
log=$(mktemp)
trap 'rm -f "$log"' EXIT

(cd fuzz && cargo +nightly fuzz build "${FUZZ_FLAGS[@]}" "$target")
set +e
# -timeout: an input that takes 10 s is a hang; -rss_limit_mb: a parser that takes 2 GB
# for a small input is a bug too. Both leave an artifact, as a crash does.
(cd fuzz && cargo +nightly fuzz run "${FUZZ_FLAGS[@]}" "$target" "corpus/$target" -- \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="artifacts/$target/") 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
echo "=== fuzz $target: ${seconds}s"
echo "executions:   $(stat number_of_executed_units)"
echo "exec/s:       $(stat average_exec_per_sec)"
echo "corpus:       $before -> $(count "$corpus") inputs"
echo "crashes:      $(($(count "$artifacts") - crashes_before)) new in $artifacts"
find "$artifacts" -maxdepth 1 -type f -newer "$log" -printf '              %p\n' 2>/dev/null || true
exit "$status"
