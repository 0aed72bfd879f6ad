#!/usr/bin/env bash
# Builds the icelens page and serves it on http://127.0.0.1:8080 with the bundled demo scene.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/icelens-target}"
export PATH="$HOME/.cargo/bin:$PATH"
# The page's own build folder, as scripts/test.sh uses (the release wasm build shares nothing
# with the native test builds).
export CARGO_TARGET_DIR="$CARGO_TARGET_DIR/page"
exec trunk serve --release "$@"
