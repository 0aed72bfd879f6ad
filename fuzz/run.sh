#!/usr/bin/env bash
# Fuzzes icelens_core::read_scene for a bounded time with libFuzzer (cargo-fuzz).
#
#   fuzz/run.sh [SECONDS]      default 60
#
# The corpus is seeded on every run from the three shared test scenes (two netCDF-4, one
# netCDF-3), truncated copies and header-only prefixes of them, and, where python3 with
# netCDF4 and the scene generator make_scenes.py are available, three tiny scenes of the same
# three kinds (50-75 pixels a side; generated once into fuzz/corpus/generated/), which the
# fuzzer can mutate far faster than full scenes. Inputs libFuzzer finds interesting accumulate
# in fuzz/corpus/read_scene/ across runs. A crashing, hanging or memory-exhausting input is
# written to fuzz/artifacts/read_scene/ and the script exits non-zero.
#
# Needs a nightly toolchain (`rustup toolchain install nightly`) and cargo-fuzz
# (`cargo install cargo-fuzz`). Environment: FIXTURES (default ../shared/fixtures next to the
# repository, else /work/shared/fixtures), MAKE_SCENES (path of make_scenes.py), FUZZ_ARGS
# (extra libFuzzer flags; they override the ones set here), FUZZ_MAX_LEN (see below).
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_TO_RUN="${1:-60}"
export PATH="$HOME/.cargo/bin:$PATH"

FIXTURES="${FIXTURES:-}"
if [[ -z "$FIXTURES" ]]; then
  for d in ../../shared/fixtures /work/shared/fixtures; do
    [[ -d "$d" ]] && { FIXTURES="$d"; break; }
  done
fi
[[ -n "$FIXTURES" && -d "$FIXTURES" ]] || { echo "fixtures folder not found; set FIXTURES" >&2; exit 2; }
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2; exit 2; }

MAKE_SCENES="${MAKE_SCENES:-}"
if [[ -z "$MAKE_SCENES" ]]; then
  for f in ../../shared/tools/make_scenes.py /work/shared/tools/make_scenes.py; do
    [[ -f "$f" ]] && { MAKE_SCENES="$f"; break; }
  done
fi

# Seed corpus: whole scenes, truncated copies (every truncation point exercises a different
# "file ends early" path), and short prefixes holding just the headers.
CORPUS=corpus/read_scene
GENERATED=corpus/generated
mkdir -p "$CORPUS" "$GENERATED" artifacts/read_scene
if [[ -f "${MAKE_SCENES}" ]] && python3 -c 'import netCDF4, scipy' 2>/dev/null; then
  while read -r name fmt lines samples extra; do
    [[ -s "$GENERATED/$name" ]] && continue
    python3 "$MAKE_SCENES" --out "$GENERATED" --name "$name" --fmt "$fmt" \
      --size "$lines" "$samples" --seed 7 $extra >/dev/null
  done <<'LIST'
20190412T103015_dmi_prep.nc nc4 50 75
20211130T083012_dmi_prep.nc nc4 75 50 --test-style
20200117T211533_cis_prep.nc nc3 50 50
LIST
else
  echo "note: python3 with netCDF4 or make_scenes.py not found; seeding from the fixtures only"
fi
n_seed=0
for f in "$FIXTURES"/*.nc "$GENERATED"/*.nc; do
  [[ -f "$f" ]] || continue
  case "$f" in "$GENERATED"/*) tag=small_ ;; *) tag= ;; esac
  base=$tag$(basename "$f" .nc)
  size=$(stat -c %s "$f")
  cp -f "$f" "$CORPUS/seed_${base}.nc"; n_seed=$((n_seed + 1))
  for pct in 5 25 55 90 99; do
    head -c $((size * pct / 100)) "$f" > "$CORPUS/seed_${base}_trunc${pct}.nc"; n_seed=$((n_seed + 1))
  done
  for bytes in 512 4096 65536; do
    [[ $bytes -lt $size ]] || continue
    head -c "$bytes" "$f" > "$CORPUS/seed_${base}_head${bytes}.nc"; n_seed=$((n_seed + 1))
  done
done
echo "seed corpus: $n_seed inputs from $FIXTURES and $GENERATED ($(ls "$CORPUS" | wc -l) in $CORPUS)"
# Longest input libFuzzer loads or generates (longer seeds are cut to it). With the tiny
# scenes present, 256 KiB holds each of them whole and keeps the fuzzer at about a thousand
# executions a second, against under a hundred when it mutates the multi-megabyte fixtures
# whole; without them, allow the largest seed so that intact scenes are decoded at all.
# FUZZ_MAX_LEN overrides.
if ls "$GENERATED"/*.nc >/dev/null 2>&1; then
  max_len=${FUZZ_MAX_LEN:-262144}
else
  max_len=${FUZZ_MAX_LEN:-$(find "$CORPUS" -type f -printf '%s\n' | sort -n | tail -1)}
fi

# The sanitizer build gets its own target folder (fuzz/target): its flags differ from the
# normal build's, and sharing one folder would make both rebuild each time.
unset CARGO_TARGET_DIR
log=$(mktemp)
trap 'rm -f "$log"' EXIT
before=$(ls artifacts/read_scene | wc -l)
start=$(date +%s)
set +e
# -timeout: an input that takes longer than this counts as a hang (reported like a crash).
# shellcheck disable=SC2086
cargo +nightly fuzz run read_scene "$CORPUS" -- \
  -max_total_time="$SECONDS_TO_RUN" -max_len="$max_len" -timeout=30 -print_final_stats=1 ${FUZZ_ARGS:-} 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
elapsed=$(( $(date +%s) - start ))

execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
peak=$(grep -oE 'stat::peak_rss_mb: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
cov=$(grep -oE '^#[0-9]+.*cov: [0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+' | grep -oE '[0-9]+')
after=$(ls artifacts/read_scene | wc -l)

echo
echo "== fuzz read_scene summary =="
echo "requested time:  ${SECONDS_TO_RUN} s (wall incl. build: ${elapsed} s), max_len ${max_len}"
echo "executions:      ${execs:-?}"
echo "execs/s:         ${rate:-?}"
echo "peak RSS:        ${peak:-?} MB"
echo "coverage edges:  ${cov:-?}"
echo "corpus size:     $(ls "$CORPUS" | wc -l) inputs"
if [[ $rc -eq 0 && $after -eq $before ]]; then
  echo "result:          no crash, hang or out-of-memory found"
else
  echo "result:          FAILURE (exit $rc); new artifacts:"
  ls -t artifacts/read_scene | head -n $((after - before > 0 ? after - before : 5)) | sed 's|^|  fuzz/artifacts/read_scene/|'
  grep -E "panicked at|ERROR: libFuzzer|SUMMARY:|^Panic|thread '.*' panicked" "$log" | head -5 | sed 's/^/  /'
  exit 1
fi
