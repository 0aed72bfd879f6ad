#!/usr/bin/env bash
# Rebuilds the bundled demo model, models/icelens-demo.bpk, from scratch:
#   scripts/train-demo.sh
# Generates ten labelled synthetic scenes with `icelens synth` (seeds 201-210), trains a
# 3-level U-Net on them with `icelens finetune`, and scores it on three held-out generated
# scenes (seeds 301-303). Takes about 15 minutes on a 2-core machine without a GPU (burn's
# wgpu backend on Mesa's software Vulkan).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/icelens-target}"
work="${WORK:-$(mktemp -d)}"
# The binary `cargo test --workspace` builds: one feature set of burn for tests and tools.
cargo test --quiet --workspace --no-run
icelens() { "$CARGO_TARGET_DIR/debug/icelens" "$@"; }
mkdir -p "$work/train" "$work/held-out"
i=0
for svc in dmi cis dmi dmi cis dmi cis dmi dmi cis; do
  i=$((i + 1))
  month=$(printf %02d $(((i * 5) % 12 + 1)))
  day=$(printf %02d $((i + 3)))
  icelens synth --out "$work/train" --size 384 384 --seed $((200 + i)) \
    --stamp "2020${month}${day}T091500" --service "$svc" >/dev/null
done
for i in 1 2 3; do
  icelens synth --out "$work/held-out" --size 384 384 --seed $((300 + i)) \
    --stamp "20210${i}20T120000" --service dmi >/dev/null
done
started=$SECONDS
icelens finetune --filters 8,16,32 "$work"/train/*.nc --out models/icelens-demo.bpk \
  --patches 160 --patch-size 128 --batch 8 --epochs 12 --steps 12 --lr 3e-3 --val 0.2 \
  --patience 4 --seed 7 \
  --note data="10 synthetic scenes from icelens synth (384 x 384, seeds 201-210)" \
  --note purpose="demo only: trained on synthetic data, not on real ice"
icelens evaluate --model models/icelens-demo.bpk "$work"/held-out/*.nc
echo "training took $((SECONDS - started)) s (the README's demo training time)"
