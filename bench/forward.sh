#!/usr/bin/env bash
# U-Net forward pass: icelens CPU vs PyTorch CPU on a 1 x 24 x SIZE x SIZE input.
#
#   bench/forward.sh [MODEL] [SIZE] [RUNS]
#
# MODEL defaults to shared/reference/pizza_marinara.pt, SIZE to 1024, RUNS to 3.
# The PyTorch side runs in bench/.venv (created here on first use; torch + numpy
# from PyPI). Both sides use a warm-up run, then RUNS timed runs; the ratio
# printed at the end is icelens best / torch best (< 1: icelens is faster).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
DEFAULT_MODEL="$ROOT/../shared/reference/pizza_marinara.pt"
[ -f "$DEFAULT_MODEL" ] || DEFAULT_MODEL=/work/shared/reference/pizza_marinara.pt
MODEL="$(realpath "${1:-$DEFAULT_MODEL}")"
SIZE="${2:-1024}"
RUNS="${3:-3}"
VENV="$HERE/.venv"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/icelens-target}"

# (a) Python environment for the reference.
if ! "$VENV/bin/python" -c 'import torch, numpy' 2>/dev/null; then
    echo "setting up $VENV (torch, numpy)" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet torch numpy
fi

# (b) icelens.
echo "== icelens (cargo bench, CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
ICE_OUT="$(cd "$ROOT" && cargo bench -p icelens-model --bench forward -- "$MODEL" "$SIZE" "$RUNS")"
echo "$ICE_OUT"

# (c) PyTorch.
echo "== PyTorch"
TORCH_OUT="$("$VENV/bin/python" "$HERE/forward_torch.py" "$MODEL" "$SIZE" "$RUNS")"
echo "$TORCH_OUT"

best() { # best time in seconds from a bench line with the given label
    awk -v label="$1" '$1 == label { for (i = 1; i < NF; i++) if ($i == "best") print $(i + 1) }'
}
ICE_BEST="$(best icelens-cpu <<<"$ICE_OUT")"
TORCH_BEST="$(best torch-cpu <<<"$TORCH_OUT")"
if [ -z "$ICE_BEST" ] || [ -z "$TORCH_BEST" ]; then
    echo "could not read the best times" >&2
    exit 1
fi
awk -v a="$ICE_BEST" -v b="$TORCH_BEST" -v s="$SIZE" 'BEGIN {
    printf "ratio icelens/torch (best, %dx%d): %.2f  (%.3f s / %.3f s)\n", s, s, a / b, a, b
}'
