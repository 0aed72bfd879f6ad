#!/usr/bin/env bash
# Fuzzes icelens_core::read_scene for a bounded time with libFuzzer (cargo-fuzz).
#
#   fuzz/run.sh [SECONDS]      default 60
#
# The corpus is seeded on every run from the three shared test scenes (two netCDF-4, one
# netCDF-3) and truncated copies of them; inputs libFuzzer finds interesting accumulate in
# fuzz/corpus/read_scene/ across runs. A crashing input is written to
# fuzz/artifacts/read_scene/ and the script exits non-zero.
#
# Needs a nightly toolchain (`rustup toolchain install nightly`) and cargo-fuzz
# (`cargo install cargo-fuzz`). Environment: FIXTURES (default ../shared/fixtures next to the
# repository, else /work/shared/fixtures), FUZZ_ARGS (extra libFuzzer flags).
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

# Seed corpus: whole scenes, truncated copies (every truncation point exercises a different
# "file ends early" path), and short prefixes holding just the headers.
CORPUS=corpus/read_scene
mkdir -p "$CORPUS" artifacts/read_scene
n_seed=0
for f in "$FIXTURES"/*.nc; do
  base=$(basename "$f" .nc)
  size=$(stat -c %s "$f")
  cp -f "$f" "$CORPUS/seed_${base}.nc"; n_seed=$((n_seed + 1))
  for pct in 5 25 55 90 99; do
    head -c $((size * pct / 100)) "$f" > "$CORPUS/seed_${base}_trunc${pct}.nc"; n_seed=$((n_seed + 1))
  done
  for bytes in 512 4096 65536; do
    head -c "$bytes" "$f" > "$CORPUS/seed_${base}_head${bytes}.nc"; n_seed=$((n_seed + 1))
  done
done
echo "seed corpus: $n_seed inputs from $FIXTURES ($(ls "$CORPUS" | wc -l) in $CORPUS)"

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
  -max_total_time="$SECONDS_TO_RUN" -timeout=30 -print_final_stats=1 ${FUZZ_ARGS:-} 2>&1 | tee "$log"
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
echo "requested time:  ${SECONDS_TO_RUN} s (wall incl. build: ${elapsed} s)"
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
