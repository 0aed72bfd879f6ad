#!/usr/bin/env bash
# Runs every icelens check: formatting, lints, native tests, the Slurm test, the wasm build and
# the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/icelens-target}"
export PATH="$HOME/.cargo/bin:$PATH"
# wgpu's Vulkan loader wants a runtime directory; headless machines often have none.
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "$XDG_RUNTIME_DIR" ]; then
  export XDG_RUNTIME_DIR="${TMPDIR:-/tmp}/icelens-runtime-$(id -u)"
  mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
fi
step() { printf '\n\033[1;36m==> %s\033[0m\n' "$*" >&2; }

step "cargo fmt --check"
cargo fmt --all -- --check
step "no import loops between source files"
python3 scripts/check_cycles.py
step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "cargo clippy for wasm32 (the page and its worker as the browser runs them)"
# The command line is native only. The page's folder: its wasm32 dependencies are there.
CARGO_TARGET_DIR="$CARGO_TARGET_DIR/page" cargo clippy --target wasm32-unknown-unknown \
  --workspace --exclude icelens-cli --lib --bins --locked -- -D warnings
step "native tests"
cargo test --workspace --locked
step "Slurm job array over the fixtures (single-node Slurm)"
scripts/slurm/test.sh "$CARGO_TARGET_DIR/debug/icelens"
step "wasm32 build of the page (trunk)"
# The page's release build shares no artifact with the native debug builds above (other
# profile, other target), so it gets a folder of its own under the same cache: the two never
# wait for each other's lock, and neither evicts the other.
CARGO_TARGET_DIR="$CARGO_TARGET_DIR/page" trunk build --release
step "browser tests (headless Chromium)"
(cd e2e && node --test --test-reporter=spec)
