#!/usr/bin/env bash
# Fuzzes the checkpoint reader (zip + restricted unpickler + safetensors) for a bounded time.
#
#   fuzz/run_checkpoint.sh [SECONDS]      default 60
#
# Seeds: the reference checkpoint's pickle alone and in a small zip, truncated copies, and a
# few hand-written pickles (a bare state_dict, a refused global). Needs nightly + cargo-fuzz.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_TO_RUN="${1:-60}"
export PATH="$HOME/.cargo/bin:$PATH"
REF="${REFERENCE:-}"
for d in ../../shared/reference /work/shared/reference; do
  [[ -z "$REF" && -d "$d" ]] && REF="$d"
done
[[ -n "$REF" ]] || { echo "reference folder not found; set REFERENCE" >&2; exit 2; }
CORPUS=corpus/load_checkpoint
mkdir -p "$CORPUS" artifacts/load_checkpoint
python3 - "$REF/pizza_marinara.pt" "$CORPUS" <<'PY'
import io, sys, zipfile
src, out = sys.argv[1], sys.argv[2]
z = zipfile.ZipFile(src)
pkl = z.read("best_model/data.pkl")
open(f"{out}/seed_data.pkl", "wb").write(pkl)
# A small zip: the pickle and the first few storages (the fuzzer mutates it quickly).
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as w:
    for n in z.namelist():
        if n.endswith("data.pkl") or n.endswith("/version") or n.rsplit("/", 1)[-1] in ("0", "1", "2"):
            w.writestr(n, z.read(n))
small = buf.getvalue()
open(f"{out}/seed_small.pt", "wb").write(small)
for pct in (10, 50, 90):
    open(f"{out}/seed_small_trunc{pct}.pt", "wb").write(small[: len(small) * pct // 100])
open(f"{out}/seed_evil.pkl", "wb").write(b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03.")
PY
unset CARGO_TARGET_DIR
log=$(mktemp)
trap 'rm -f "$log"' EXIT
before=$(ls artifacts/load_checkpoint | wc -l)
set +e
cargo +nightly fuzz run load_checkpoint "$CORPUS" -- \
  -max_total_time="$SECONDS_TO_RUN" -max_len=262144 -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
after=$(ls artifacts/load_checkpoint | wc -l)
echo
echo "== fuzz load_checkpoint summary =="
echo "executions:      $(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)"
echo "execs/s:         $(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)"
echo "peak RSS:        $(grep -oE 'stat::peak_rss_mb: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1) MB"
if [[ $rc -eq 0 && $after -eq $before ]]; then
  echo "result:          no crash, hang or out-of-memory found"
else
  echo "result:          FAILURE (exit $rc)"
  grep -E "panicked at|ERROR: libFuzzer|SUMMARY:" "$log" | head -5 | sed 's/^/  /'
  exit 1
fi
