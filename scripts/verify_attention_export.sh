#!/usr/bin/env bash
# Fine-tunes attention U-Nets with icelens (the reference one, and pizza_marinara grown into
# one), exports them as .pt, and checks each with real PyTorch: UNetAttention.load_state_dict
# (strict=True) takes it and predicts what `icelens forward` predicts (logits and ψ).
#
#   scripts/verify_attention_export.sh
#
# Needs torch in bench/.venv (bench/forward.sh creates it).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SHARED="${ICELENS_SHARED:-$ROOT/../shared}"
PY="$ROOT/bench/.venv/bin/python"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/icelens-target}"
# The binary the workspace's tests build: the same feature set, so no second build of burn.
(cd "$ROOT" && cargo test --quiet --workspace --locked --no-run)
BIN="$CARGO_TARGET_DIR/debug/icelens"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
SCENE="$SHARED/fixtures/20190412T103015_dmi_prep.nc"
INPUT="$SHARED/reference/attention/odd_input.npy"
SHORT=(--patches 8 --patch-size 64 --batch 2 --epochs 2 --steps 2)

check() {
  local name="$1"; shift
  "$BIN" finetune "$@" "$SCENE" --out "$OUT/$name.pt" "${SHORT[@]}"
  "$BIN" forward --model "$OUT/$name.pt" --input "$INPUT" --out "$OUT/$name"
  "$PY" "$ROOT/scripts/verify_attention_export.py" "$OUT/$name.pt" "$OUT/$name" "$INPUT" \
    "$SHARED/reference/attention"
}

echo "== the reference attention U-Net, fine-tuned"
check tuned --model "$SHARED/reference/attention/unet_attention_4lvl.pt"
echo "== pizza_marinara grown into an attention U-Net [16, 32, 32, 32] and trained"
check grown --model "$SHARED/reference/pizza_marinara.pt" --filters 16,32,32,32 --attention
echo "== a fresh 3-level attention U-Net [6, 10, 14] with a regression SIC head"
check fresh --filters 6,10,14 --attention --regression
