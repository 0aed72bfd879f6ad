#!/usr/bin/env bash
# Whole-scene prediction, whole process: `icelens predict` against PyTorch running the
# challenge's `test_upload` procedure (bench/predict_torch.py) on the same scene, the same
# checkpoint and the same threads, alternately, and how many pixels agree.
#
#   bench/predict.sh [RUNS]        default 3
#
# The scene is a generated 5000 x 5200 netCDF-4 scene (SIZE="LINES SAMPLES" to change),
# made once with the shared scene generator and cached in bench/out/ (bench/decode.sh uses
# the same one). MODEL defaults to shared/reference/pizza_marinara.pt; THREADS to the
# machine's cores (RAYON_NUM_THREADS for icelens, torch.set_num_threads for PyTorch).
# icelens is built with `cargo build --release` (PROFILE=dev uses the test build instead).
# PyTorch runs in bench/.venv (made on first use: torch, numpy, xarray, netCDF4 from PyPI).
#
# Prints each run's wall time and peak RSS, the ratio icelens / PyTorch of the best and of
# the median times, and the share of equal pixels per chart against PyTorch's whole-scene
# argmax (with the reference margins of the pixels that differ).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
cd "$HERE"
RUNS="${1:-3}"
SIZE="${SIZE:-5000 5200}"
THREADS="${THREADS:-$(nproc)}"
PROFILE="${PROFILE:-release}"
SHARED="${ICELENS_SHARED:-$ROOT/../shared}"
[ -d "$SHARED" ] || SHARED=/work/shared
MODEL="$(realpath "${MODEL:-$SHARED/reference/pizza_marinara.pt}")"
MAKE_SCENES="${MAKE_SCENES:-$SHARED/tools/make_scenes.py}"
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/icelens-target}"
VENV="$HERE/.venv"

if ! "$VENV/bin/python" -c 'import torch, numpy, xarray, netCDF4' 2>/dev/null; then
  echo "setting up $VENV (torch, numpy, xarray, netCDF4)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet torch numpy xarray netCDF4
fi

read -r LINES SAMPLES <<<"$SIZE"
NAME=20190412T103015_dmi_prep.nc
SCENE_DIR="out/scene_${LINES}x${SAMPLES}"
SCENE="$SCENE_DIR/$NAME"
if [[ ! -s "$SCENE" ]]; then
  echo "generating a ${LINES} x ${SAMPLES} netCDF-4 scene (once; cached in bench/$SCENE) ..." >&2
  mkdir -p "$SCENE_DIR"
  "$VENV/bin/python" -c 'import scipy' 2>/dev/null || "$VENV/bin/pip" install --quiet scipy
  "$VENV/bin/python" "$MAKE_SCENES" --out "$SCENE_DIR.tmp" --name "$NAME" --fmt nc4 \
    --size "$LINES" "$SAMPLES" --seed 1
  mv "$SCENE_DIR.tmp/$NAME" "$SCENE" && rmdir "$SCENE_DIR.tmp"
fi

echo "building icelens ($PROFILE) ..." >&2
if [[ "$PROFILE" == release ]]; then
  (cd "$ROOT" && cargo build --release --quiet -p icelens-cli --bin icelens)
  ICELENS="$CARGO_TARGET_DIR/release/icelens"
else
  (cd "$ROOT" && cargo build --quiet -p icelens-cli --bin icelens)
  ICELENS="$CARGO_TARGET_DIR/debug/icelens"
fi

OUT="out/predict"
mkdir -p "$OUT"
REF="$OUT/reference_${LINES}x${SAMPLES}"
if [[ ! -s "$REF/margin_FLOE.npy" || "$REF/margin_FLOE.npy" -ot "$MODEL" ]]; then
  echo "PyTorch whole-scene reference (once, untimed) ..." >&2
  "$VENV/bin/python" predict_torch.py "$MODEL" "$SCENE" "$OUT/reference.nc" \
    --threads "$THREADS" --reference "$REF"
fi
cat "$SCENE" > /dev/null  # both read the file from the page cache

# One timed whole process: prints "SECONDS PEAK_RSS_KIB".
timed() {
  /usr/bin/time -f '%e %M' -o "$OUT/time.txt" "$@" >"$OUT/run.log" 2>&1 || { cat "$OUT/run.log" >&2; exit 1; }
  cat "$OUT/time.txt"
}
ice=() torch=()
for run in $(seq 1 "$RUNS"); do
  read -r t m < <(timed env RAYON_NUM_THREADS="$THREADS" "$ICELENS" predict --model "$MODEL" --upload "$OUT/icelens.nc" "$SCENE")
  printf 'run %d icelens: %6.1f s, peak RSS %5.2f GiB  (%s)\n' "$run" "$t" "$(echo "$m / 1048576" | bc -l)" "$(grep -m1 ' px ' "$OUT/run.log")"
  ice+=("$t")
  read -r t m < <(timed "$VENV/bin/python" predict_torch.py "$MODEL" "$SCENE" "$OUT/torch.nc" --threads "$THREADS")
  printf 'run %d PyTorch: %6.1f s, peak RSS %5.2f GiB  (%s)\n' "$run" "$t" "$(echo "$m / 1048576" | bc -l)" "$(tail -1 "$OUT/run.log")"
  torch+=("$t")
done

python3 - "${ice[*]}" "${torch[*]}" "$LINES" "$SAMPLES" "$THREADS" <<'PY'
import statistics, sys
ice = sorted(map(float, sys.argv[1].split()))
torch = sorted(map(float, sys.argv[2].split()))
lines, samples, threads = sys.argv[3], sys.argv[4], sys.argv[5]
print(f"whole {lines} x {samples} scene, {threads} threads, {len(ice)} runs each:")
print(f"icelens predict: best {ice[0]:.1f} s, median {statistics.median(ice):.1f} s")
print(f"PyTorch test_upload: best {torch[0]:.1f} s, median {statistics.median(torch):.1f} s")
print(f"ratio icelens/PyTorch: best {ice[0] / torch[0]:.2f}, median {statistics.median(ice) / statistics.median(torch):.2f}")
PY
"$VENV/bin/python" compare_upload.py "$OUT/icelens.nc" "$REF"
