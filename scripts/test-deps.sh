#!/usr/bin/env bash
# Installs what petrel's test suite needs on a fresh Debian machine, idempotently.
# Used by scripts/test.sh (the README's test command) and so by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests start or build images with. One per line, with the reason.
APT_PACKAGES=(
  busybox-static      # the static busybox that test images are built from
  bubblewrap          # peer runtime for conformance and the benchmark
  charliecloud-runtime # ch-run: peer runtime
  runc                # peer runtime (OCI)
  tini                # tini-static: the init petrel-drivers puts in front of runc/crun jobs
  hyperfine           # benchmarks
  util-linux          # unshare, the namespace floor in benchmarks
  python3-venv        # the HTCondor Python bindings used as differential oracles
  tzdata              # zone files: user-log tests write and read local times in a named zone
  skopeo umoci docker-registry squashfs-tools squashfuse debootstrap # images and registries
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "test-deps: missing Debian packages (run as root to install): ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# HTCondor's own Python bindings, as oracles: 25.x for classad2/htcondor2, 24.0 for Submit.
venvs=.cache/venvs
mkdir -p "$venvs"
make_venv() { # dir, requirement
  if [ ! -x "$venvs/$1/bin/python" ] || ! "$venvs/$1/bin/python" -c "import htcondor" 2>/dev/null; then
    python3 -m venv "$venvs/$1"
    "$venvs/$1/bin/pip" install -q --disable-pip-version-check "$2"
  fi
}
make_venv htcondor25 'htcondor>=25,<26'
make_venv htcondor24 'htcondor==24.0.*'

if ! command -v cargo-nextest >/dev/null 2>&1 && ! cargo nextest --version >/dev/null 2>&1; then
  cargo install --locked cargo-nextest >/dev/null
fi
