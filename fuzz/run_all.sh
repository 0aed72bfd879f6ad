#!/usr/bin/env bash
# Fuzzes every reader of untrusted bytes, one target after another, for SECONDS each.
#
#   fuzz/run_all.sh SECONDS [TARGET...]      default: every target below
#
# Targets: read_scene (netCDF scenes), load_checkpoint (torch zip + pickle), load_safetensors,
# load_burnpack, read_npy (.npy/.npz), read_story (story JSON), transfer_join (the scene
# message from the decoding Web Worker). Each runs with libFuzzer's -rss_limit_mb=2048 (an
# input that needs more memory is a finding) and -timeout=10 (an input that takes longer is a
# finding), from its corpus (fuzz/corpus/<target>/, kept across runs) plus its seeds:
#   - fuzz/seeds/<target>/ (committed; written by crates/icelens-core/tests/fuzz_seeds.rs),
#   - generated ones in fuzz/corpus/seeds-<target>/: pickles using every opcode the unpickler
#     knows, in protocols 0-5, bare and in torch's zip layout, safetensors of every dtype, .npy
#     of every dtype and header version, .npz (fuzz/make_checkpoint_seeds.py); the shared
#     reference checkpoint's pickle and a small zip of it; the demo story; the shared fixture
#     scenes cut to their first bytes and the tiny scenes fuzz/run.sh generates.
# Dictionaries (fuzz/dict/) give libFuzzer the pickle opcodes, torch's global names, and
# the npy and JSON keys.
#
# Environment: FUZZ_KEEP_GOING=1 (see below), FUZZ_ARGS (more libFuzzer flags), SHARED (the
# shared fixtures and references; default ../shared beside the repository), FUZZ_TARGET_DIR.
#
# Writes fuzz/out/summary.md (one row per target: executions, rate, coverage, corpus, peak
# memory, result) and fuzz/out/<target>.log. A crash, hang or out-of-memory input goes to
# fuzz/artifacts/<target>/; the script then exits non-zero (after running the other targets).
#
# Needs nightly Rust and cargo-fuzz (`cargo install cargo-fuzz`), python3 for the seeds. The
# sanitizer build goes to FUZZ_TARGET_DIR (default ~/.cache/icelens-fuzz-target), apart from
# the normal build, whose flags differ. FUZZ_ARGS adds libFuzzer flags (e.g. -jobs=4);
# FUZZ_PARALLEL=N runs N targets at once (one core each).
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_EACH="${1:?usage: fuzz/run_all.sh SECONDS [TARGET...]}"
# FUZZ_KEEP_GOING=1: libFuzzer's fork mode, which goes on after a finding (each is still
# written to fuzz/artifacts/<target>/), so that one known crash does not end a long run.
KEEP_GOING_ARGS=""
[[ "${FUZZ_KEEP_GOING:-0}" == 1 ]] && KEEP_GOING_ARGS="-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1"
shift
ALL=(read_scene load_checkpoint load_safetensors load_burnpack read_npy read_story transfer_join)
TARGETS=("${@:-${ALL[@]}}")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=("${ALL[@]}")
export PATH="$HOME/.cargo/bin:$PATH"
TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/icelens-fuzz-target}"
unset CARGO_TARGET_DIR
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2; exit 2; }
command -v python3 >/dev/null || { echo "python3 is needed for the seeds" >&2; exit 2; }

SHARED="${SHARED:-}"
for d in ../../shared /work/shared; do
  [[ -z "$SHARED" && -d "$d/reference" ]] && SHARED="$d"
done

mkdir -p out
# ---------------------------------------------------------------- seeds
python3 make_checkpoint_seeds.py corpus/seeds-generated >/dev/null
for t in "${ALL[@]}"; do mkdir -p "corpus/$t" "corpus/seeds-$t" "artifacts/$t"; done
cp -f corpus/seeds-generated/pickle/* corpus/seeds-load_checkpoint/
cp -f corpus/seeds-generated/safetensors/* corpus/seeds-load_safetensors/
cp -f corpus/seeds-generated/npy/* corpus/seeds-read_npy/
cp -f ../assets/demo/story.json corpus/seeds-read_story/demo_story.json
printf '{"version":1,"title":"","steps":[]}' > corpus/seeds-read_story/empty.json
if [[ -n "$SHARED" ]]; then
  python3 - "$SHARED/reference/pizza_marinara.pt" corpus/seeds-load_checkpoint <<'PY'
import io, sys, zipfile
src, out = sys.argv[1], sys.argv[2]
z = zipfile.ZipFile(src)
pkl = next(n for n in z.namelist() if n.endswith("/data.pkl"))
open(f"{out}/reference_data.pkl", "wb").write(z.read(pkl))
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as w:
    for n in z.namelist():
        if n.endswith("data.pkl") or n.endswith("/version") or n.rsplit("/", 1)[-1] in ("0", "1", "2"):
            w.writestr(n, z.read(n))
open(f"{out}/reference_small.pt", "wb").write(buf.getvalue())
PY
  for f in "$SHARED"/fixtures/*.nc; do
    [[ -f "$f" ]] || continue
    for bytes in 4096 65536 262144; do
      head -c "$bytes" "$f" > "corpus/seeds-read_scene/$(basename "$f" .nc)_head$bytes.nc"
    done
  done
  for t in read_npy; do
    for f in "$SHARED"/reference/odd_input.npy "$SHARED"/reference/odd_argmax_SIC.npy; do
      [[ -f "$f" && $(stat -c %s "$f") -le 262144 ]] && cp -f "$f" "corpus/seeds-$t/"
    done
  done
else
  echo "note: the shared folder was not found (set SHARED); seeding without its files" >&2
fi
# Tiny whole scenes, if fuzz/run.sh generated them.
cp -f corpus/generated/*.nc corpus/seeds-read_scene/ 2>/dev/null || true

dict_for() {
  case "$1" in
    load_checkpoint|load_safetensors|load_burnpack) echo dict/checkpoint.dict ;;
    read_npy) echo dict/npy.dict ;;
    read_story|transfer_join) echo dict/story.dict ;;
    *) echo "" ;;
  esac
}
max_len_for() {
  case "$1" in
    read_scene|load_checkpoint) echo 262144 ;;
    *) echo 65536 ;;
  esac
}

# ---------------------------------------------------------------- build and run
echo "building the fuzz targets (sanitizer build in $TARGET_DIR)" >&2
if ! cargo +nightly fuzz build --target-dir "$TARGET_DIR" >out/build.log 2>&1; then
  tail -30 out/build.log >&2
  exit 2
fi

summary=out/summary.md
{
  echo "# icelens fuzzing: ${SECONDS_EACH} s per target ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, ${FUZZ_PARALLEL:-1} at a time)"
  echo
  echo "libFuzzer flags: -rss_limit_mb=2048 -timeout=10 $KEEP_GOING_ARGS ${FUZZ_ARGS:-}"
  echo
  echo "| target | executions | exec/s | coverage (edges) | features | corpus | peak RSS MB | result |"
  echo "|---|---:|---:|---:|---:|---:|---:|---|"
} > "$summary"

# One target: runs it and writes its summary row to out/<target>.row (0 when it found
# nothing).
run_target() {
  local t=$1 log="out/$1.log" dict before after rc execs rate peak cov ft last corpus result kind art
  dict=$(dict_for "$t")
  before=$(find "artifacts/$t" -type f | wc -l)
  local seeds=("corpus/seeds-$t")
  [[ -d "seeds/$t" ]] && seeds+=("seeds/$t")
  echo "== $t: ${SECONDS_EACH} s" >&2
  set +e
  # shellcheck disable=SC2086
  cargo +nightly fuzz run --target-dir "$TARGET_DIR" "$t" "corpus/$t" "${seeds[@]}" -- \
    -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=10 \
    -max_len="$(max_len_for "$t")" ${dict:+-dict=$dict} -print_final_stats=1 \
    $KEEP_GOING_ARGS ${FUZZ_ARGS:-} >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1 || true)
  rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1 || true)
  peak=$(grep -oE 'stat::peak_rss_mb: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1 || true)
  cov=$(grep -oE '^#[0-9]+.*cov: [0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+' | grep -oE '[0-9]+' || true)
  ft=$(grep -oE '^#[0-9]+.*ft: [0-9]+' "$log" | tail -1 | grep -oE 'ft: [0-9]+' | grep -oE '[0-9]+' || true)
  # -fork mode prints no final stats: take its last status line.
  last=$(grep -E '^#[0-9]+:?[[:space:]]' "$log" | tail -1 || true)
  [[ -n "$execs" ]] || execs=$(grep -oE '^#[0-9]+' <<<"$last" | tr -d '#' || true)
  [[ -n "$rate" ]] || rate=$(grep -oE 'exec/s: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || true)
  corpus=$(find "corpus/$t" -type f | wc -l)
  after=$(find "artifacts/$t" -type f | wc -l)
  if [[ $rc -eq 0 && $after -eq $before ]]; then
    result="no crash, hang or out-of-memory"
  else
    kind=$(grep -m1 -oE 'panicked at [^ ]+' "$log" || grep -m1 -oE 'ERROR: libFuzzer: [a-z-]+( [a-z-]+)?' "$log" || true)
    art=$(grep -m1 -oE "Test unit written to [^ ]+" "$log" | sed "s|Test unit written to ||; s|^$PWD/|fuzz/|" || true)
    result="FINDING (exit $rc): ${kind:-see fuzz/$log}${art:+, input $art}"
  fi
  echo "| $t | ${execs:-?} | ${rate:-?} | ${cov:-?} | ${ft:-?} | $corpus | ${peak:-?} | $result |" > "out/$t.row"
}

# FUZZ_PARALLEL targets at a time (default 1); each libFuzzer process uses one core.
PARALLEL="${FUZZ_PARALLEL:-1}"
for t in "${TARGETS[@]}"; do
  rm -f "out/$t.row"
  while [[ $(jobs -rp | wc -l) -ge $PARALLEL ]]; do wait -n || true; done
  run_target "$t" &
done
wait
failed=0
for t in "${TARGETS[@]}"; do
  if [[ -f "out/$t.row" ]]; then
    cat "out/$t.row" >> "$summary"
    grep -q '| FINDING' "out/$t.row" && failed=1
  else
    echo "| $t | ? | ? | ? | ? | ? | ? | did not finish |" >> "$summary"
    failed=1
  fi
done
echo >&2
cat "$summary"
exit $failed
