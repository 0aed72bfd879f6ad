#!/usr/bin/env bash
# One training step of pizza_marinara (batch 8 x 24 x 256 x 256, Adam): icelens on burn's CPU
# backend (flex, on every core) against PyTorch on the CPU, same threads.
#
#   bench/train.sh [ROUNDS]      default 2
#
# Each round runs icelens' three steps, then PyTorch's warm-up and three steps (alternating, so
# a busy moment of the machine falls on both). icelens' first step of a round is its warm-up
# and is left out. Prints each side's best and median step over all rounds and the ratio
# icelens/PyTorch of the best steps (< 1: icelens is faster).
#
# icelens' side is the ignored test `step_time_marinara_8x256_cpu` (crates/icelens-model/
# tests/train.rs) run from the build `cargo test --workspace` makes: any other cargo command
# resolves another feature set and rebuilds burn (README, Tests), and the step's time is
# burn's, whose code that build optimises as release does. PyTorch runs bench/train_torch.py
# in bench/.venv (created on first use, torch + numpy from PyPI) with 2 threads.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
MODEL="$(realpath "$ROOT/../shared/reference/pizza_marinara.pt")"
ROUNDS="${1:-2}"
VENV="$HERE/.venv"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/icelens-target}"
export PATH="$HOME/.cargo/bin:$PATH"

if ! "$VENV/bin/python" -c 'import torch, numpy' 2>/dev/null; then
    echo "setting up $VENV (torch, numpy)" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet torch numpy
fi

echo "building the tests (cargo test --workspace --no-run) ..." >&2
(cd "$ROOT" && cargo test --workspace --no-run --quiet)

ICE=""
TORCH=""
for round in $(seq "$ROUNDS"); do
    out="$(cd "$ROOT" && cargo test --workspace --quiet -- --ignored --exact step_time_marinara_8x256_cpu --nocapture 2>&1 | grep '^step ')"
    echo "round $round, icelens:"
    sed 's/^/  /' <<<"$out"
    # Steps after the first, in seconds.
    ICE+="$(awk '$2 != "0:" { print $3 + 0 }' <<<"$out")"$'\n'
    out="$("$VENV/bin/python" "$HERE/train_torch.py" "$MODEL" 8 256 3 | grep '^pytorch')"
    echo "round $round, $out"
    TORCH+="$out"$'\n'
done

median() { sort -g | awk 'NF { v[++n] = $1 } END { print v[int((n + 1) / 2)] }'; }
ICE_BEST="$(grep . <<<"$ICE" | sort -g | head -n1)"
ICE_MEDIAN="$(grep . <<<"$ICE" | median)"
# PyTorch prints best and median per round: best of bests, median of medians.
field() { awk -v w="$1" '{ for (i = 1; i < NF; i++) if ($i == w) print $(i + 1) + 0 }'; }
TORCH_BEST="$(field best <<<"$TORCH" | sort -g | head -n1)"
TORCH_MEDIAN="$(field median <<<"$TORCH" | median)"
echo
echo "training step 8 x 24 x 256 x 256 of pizza_marinara, Adam, $(nproc) cores:"
echo "  icelens (burn flex, CPU): best ${ICE_BEST} s, median ${ICE_MEDIAN} s"
echo "  PyTorch (CPU, 2 threads): best ${TORCH_BEST} s, median ${TORCH_MEDIAN} s"
awk -v a="$ICE_BEST" -v b="$TORCH_BEST" 'BEGIN { printf "ratio icelens/PyTorch (best): %.2f\n", a / b }'
