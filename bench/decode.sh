#!/usr/bin/env bash
# Decode benchmark on a realistic-size scene: icelens (pure Rust) against netCDF4-python
# (the libnetcdf/HDF5 C libraries).
#
#   bench/decode.sh [RUNS]       default 3
#
# Once, generates a 5000 x 5200 netCDF-4 scene (zlib level 4 + shuffle, 256 x 256 chunks,
# with charts) into bench/out/ with the shared scene generator; this takes minutes and several
# GB of memory. Then times (a) icelens_core::read_scene, built --release, and (b) netCDF4-python
# reading the same seven full-grid variables into numpy arrays, each over RUNS runs in one
# process, and prints a table with peak resident memory.
#
# Environment: SIZE ("LINES SAMPLES", default "5000 5200"), MAKE_SCENES (path of
# make_scenes.py), PYTHON (default python3), CARGO_TARGET_DIR (default ~/.cache/icelens-target).
set -euo pipefail
cd "$(dirname "$0")"
RUNS="${1:-3}"
SIZE="${SIZE:-5000 5200}"
PYTHON="${PYTHON:-python3}"
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/icelens-target}"

MAKE_SCENES="${MAKE_SCENES:-}"
if [[ -z "$MAKE_SCENES" ]]; then
  for f in ../../shared/tools/make_scenes.py /work/shared/tools/make_scenes.py; do
    [[ -f "$f" ]] && { MAKE_SCENES="$f"; break; }
  done
fi

read -r LINES SAMPLES <<<"$SIZE"
OUT=out
NAME=20190412T103015_dmi_prep.nc
SCENE_DIR="$OUT/scene_${LINES}x${SAMPLES}"
SCENE="$SCENE_DIR/$NAME"
mkdir -p "$SCENE_DIR"

if [[ ! -s "$SCENE" ]]; then
  [[ -f "$MAKE_SCENES" ]] || { echo "make_scenes.py not found; set MAKE_SCENES" >&2; exit 2; }
  echo "generating a ${LINES} x ${SAMPLES} netCDF-4 scene (once; cached in bench/$SCENE) ..."
  start=$(date +%s.%N)
  /usr/bin/time -v -o "$SCENE_DIR/generate.time" \
    "$PYTHON" "$MAKE_SCENES" --out "$SCENE_DIR.tmp" --name "$NAME" --fmt nc4 \
      --size "$LINES" "$SAMPLES" --seed 1
  mv "$SCENE_DIR.tmp/$NAME" "$SCENE" && rmdir "$SCENE_DIR.tmp"
  gen_s=$(echo "$(date +%s.%N) - $start" | bc)
  gen_rss=$(awk -F': ' '/Maximum resident/ {printf "%.1f", $2/1048576}' "$SCENE_DIR/generate.time")
  printf 'generation: %.0f s, peak RSS %s GiB\n' "$gen_s" "$gen_rss" | tee "$SCENE_DIR/generate.txt"
else
  echo "using cached scene bench/$SCENE ($(cat "$SCENE_DIR/generate.txt" 2>/dev/null || echo 'generation time not recorded'))"
fi
file_bytes=$(stat -c %s "$SCENE")

echo "building bench/decode-rs (--release) ..."
cargo build --release --quiet --manifest-path decode-rs/Cargo.toml
RS_BIN="$CARGO_TARGET_DIR/release/icelens-bench-decode"

# Let the page cache hold the file for both readers alike.
cat "$SCENE" > /dev/null

echo "== icelens read_scene (Rust) =="
rs_out=$("$RS_BIN" "$SCENE" "$RUNS")
echo "$rs_out"
echo "== netCDF4-python (libnetcdf/HDF5) =="
py_out=$("$PYTHON" decode_netcdf4.py "$SCENE" "$RUNS")
echo "$py_out"

field() { grep '^RESULT' <<<"$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2}'; }
rs_min=$(field "$rs_out" min_s); rs_med=$(field "$rs_out" median_s); rs_rss=$(field "$rs_out" peak_rss_bytes)
py_min=$(field "$py_out" min_s); py_med=$(field "$py_out" median_s); py_rss=$(field "$py_out" peak_rss_bytes)
py_base=$(field "$py_out" base_rss_bytes); libs=$(grep '^RESULT' <<<"$py_out" | grep -oE 'netcdf=[^ ]+ hdf5=[^ ]+')
pixels=$((LINES * SAMPLES))
arrays=$((pixels * 19))   # 4 float32 + 3 uint8 per pixel

"$PYTHON" - "$rs_min" "$rs_med" "$rs_rss" "$py_min" "$py_med" "$py_rss" "$py_base" "$arrays" "$file_bytes" "$pixels" "$RUNS" "$libs" <<'PY'
import sys
rs_min, rs_med, rs_rss, py_min, py_med, py_rss, py_base, arrays, file_bytes, pixels = map(float, sys.argv[1:11])
runs, libs = sys.argv[11], sys.argv[12]
mib = 1024 * 1024
print()
print(f"scene: {int(pixels):,} pixels, file {file_bytes / mib:.0f} MiB, decoded arrays "
      f"{arrays / mib:.0f} MiB (4 x float32 + 3 x uint8 per pixel); {runs} runs each")
print(f"{'reader':<46}{'min s':>8}{'median s':>10}{'peak RSS MiB':>14}{'RSS/arrays':>12}")
print(f"{'icelens read_scene (Rust)':<46}{rs_min:>8.2f}{rs_med:>10.2f}{rs_rss / mib:>14.0f}{rs_rss / arrays:>12.2f}")
print(f"{'netCDF4-python (' + libs.replace('netcdf=', 'libnetcdf ').replace(' hdf5=', ', HDF5 ') + ')':<46}"
      f"{py_min:>8.2f}{py_med:>10.2f}{py_rss / mib:>14.0f}{py_rss / arrays:>12.2f}")
print(f"ratio Rust / C: time {rs_min / py_min:.2f} (min), {rs_med / py_med:.2f} (median); "
      f"peak RSS {rs_rss / py_rss:.2f}")
print(f"notes: the Rust peak includes the whole file held in memory ({file_bytes / mib:.0f} MiB) and "
      f"the 20 coarse channels and tie points; the Python peak includes the interpreter and "
      f"numpy ({py_base / mib:.0f} MiB before reading).")
PY
