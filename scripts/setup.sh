#!/usr/bin/env bash
# Installs what icelens needs and is missing; skips what is there. Safe to run again.
#   scripts/setup.sh build   - Rust wasm target, Trunk, wasm-bindgen CLI, binaryen's wasm-opt
#                              (to build and serve)
#   scripts/setup.sh test    - the above, plus Chromium, Slurm and munge, Node packages and Python
#                              test tools
# Everything comes from the package registries (crates.io, Debian, npm, PyPI); nothing is
# downloaded from elsewhere, so after one run everything works offline.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-test}"

TRUNK_VERSION=0.21.14
# Must equal `wasm_opt` in Trunk.toml. Binaryen 116 from crates.io rather than Debian's 108 or
# npm's: 108 writes wasm-bindgen's externref table export as table 0, so the optimised page
# stops at its first `Table.set`; npm's binaryen is compiled to JavaScript and takes minutes
# where 116 takes seconds.
WASM_OPT_VERSION=116
# Must equal the wasm-bindgen version in Cargo.lock.
WASM_BINDGEN_VERSION=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')

say() { printf '\033[1;36m==>\033[0m %s\n' "$*" >&2; }
export PATH="$HOME/.cargo/bin:$PATH"

if ! command -v cargo >/dev/null; then
  echo "error: Rust is not installed; install rustup (https://rustup.rs) with Rust 1.95 first" >&2
  exit 1
fi
if ! rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi
if ! trunk --version 2>/dev/null | grep -q "$TRUNK_VERSION"; then
  say "installing Trunk $TRUNK_VERSION (a few minutes, once)"
  cargo install --locked trunk --version "$TRUNK_VERSION"
fi
if ! wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (a few minutes, once)"
  # Not --locked: its lock file pins a webpki-roots release that crates.io no longer serves.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi
if ! wasm-opt --version 2>/dev/null | grep -q "version $WASM_OPT_VERSION\b"; then
  say "installing binaryen's wasm-opt $WASM_OPT_VERSION (about ten minutes, once)"
  cargo install --locked wasm-opt --version "0.$WASM_OPT_VERSION.1"
fi
[ "$what" = build ] && exit 0

apt_install() {
  if command -v apt-get >/dev/null; then
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@"
  else
    echo "error: please install $* with your package manager" >&2
    exit 1
  fi
}
if ! command -v chromium >/dev/null; then
  say "installing Chromium (headless browser tests)"
  apt_install chromium
fi
if ! ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; then
  say "installing Mesa's software Vulkan driver (the wgpu backend's tests on machines without a GPU)"
  apt_install mesa-vulkan-drivers libvulkan1
fi
if [ ! -x /usr/sbin/slurmctld ] || [ ! -x /usr/sbin/slurmd ] || [ ! -x /usr/sbin/munged ]; then
  say "installing Slurm and munge (the single-node Slurm test of scripts/slurm)"
  apt_install slurm-wlm munge
fi
if ! command -v node >/dev/null; then
  say "installing Node.js"
  apt_install nodejs npm
fi
if [ ! -d e2e/node_modules/playwright-core ]; then
  say "installing playwright-core"
  (cd e2e && npm ci --no-audit --no-fund --loglevel=error)
fi
if ! python3 -c "import numpy, scipy, netCDF4, xarray, sklearn" 2>/dev/null; then
  say "installing Python test tools (numpy scipy netCDF4 xarray scikit-learn)"
  python3 -m pip install --quiet numpy scipy netCDF4 xarray scikit-learn \
    || python3 -m pip install --quiet --break-system-packages numpy scipy netCDF4 xarray scikit-learn
fi
