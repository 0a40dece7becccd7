#!/usr/bin/env bash
# The whole test suite: installs what the tests need, checks formatting and lints, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/test-deps.sh
export PETREL_ORACLE_PY25="$PWD/.cache/venvs/htcondor25/bin/python"
export PETREL_ORACLE_PY24="$PWD/.cache/venvs/htcondor24/bin/python"
# Tests that need a tool or oracle fail, rather than skip, when this is set.
export PETREL_REQUIRE_ALL=1
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo nextest run --workspace --locked --no-fail-fast "$@"
