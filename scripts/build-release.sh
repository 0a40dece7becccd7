#!/usr/bin/env bash
# Builds petrel's release binary as a static PIE (the C library linked in, addresses still
# randomised) and prints its path. A static binary skips the dynamic loader's work at every
# start, about a fifth of a short `petrel run` (see bench/startup.sh). The target is given
# explicitly so the flag applies to petrel only, not to build scripts and proc macros.
set -euo pipefail
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  cargo build --release -q -p petrel-cli --target "$host" >&2
echo "${CARGO_TARGET_DIR:-$PWD/target}/$host/release/petrel"
