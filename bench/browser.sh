#!/usr/bin/env bash
# Benchmark of the page in headless Chromium: drop -> first SAR picture of a realistic-size
# scene, wasm and renderer memory, inference time per megapixel on WebGPU (SwiftShader here) and
# on the wasm CPU backend; native figures measured in the same run for comparison.
#
#   DIST=/path/to/dist bench/browser.sh
#
# Uses the built page in DIST (default <repo>/dist; build with `trunk build --release`), the
# 5000 x 5200 netCDF-4 scene that bench/decode.sh generates (bench/out/scene_5000x5200/), the
# fixtures and pizza_marinara.pt from the shared folder, and a mid-size netCDF-3 scene that
# `icelens synth` writes once into bench/out/ (MID_SIZE, default "1536 1536"). Native timings use
# the already-built binaries in CARGO_TARGET_DIR (default ~/.cache/icelens-target) when present;
# nothing is built here. Takes about 8-10 minutes on a 2-core machine.
#
# Environment: DIST, LARGE (scene path), LARGE_CPU_S (budget of the in-browser CPU run over
# the large scene, default 300 s; past it the run is cancelled and its total extrapolated from
# the tile rate; 0 skips it), WEBGPU_TIMEOUT_S (default 300), MID_SIZE, ICELENS_SHARED,
# CHROMIUM, SKIP_NATIVE=1, WEBGPU=0 (skip the WebGPU runs), SUMMARY_ONLY=1 (print the table of
# the last run again).
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$(cd .. && pwd)"
export DIST="${DIST:-$ROOT/dist}"
export ICELENS_SHARED="${ICELENS_SHARED:-$(cd "$ROOT/.." && pwd)/shared}"
TARGET="${CARGO_TARGET_DIR:-$HOME/.cache/icelens-target}"
export LARGE="${LARGE:-$PWD/out/scene_5000x5200/20190412T103015_dmi_prep.nc}"
MID_SIZE="${MID_SIZE:-1536 1536}"
read -r MID_LINES MID_SAMPLES <<<"$MID_SIZE"
OUTDIR="$PWD/out/browser"
mkdir -p "$OUTDIR"
export OUT_JSON="$OUTDIR/results.json"
MODEL="$ICELENS_SHARED/reference/pizza_marinara.pt"
FIXTURE="$ICELENS_SHARED/fixtures/20190412T103015_dmi_prep.nc"

[[ -f "$DIST/index.html" ]] || { echo "no $DIST/index.html: run 'trunk build --release' or set DIST" >&2; exit 2; }
[[ -s "$LARGE" ]] || { echo "no $LARGE: run bench/decode.sh once (it generates the scene)" >&2; exit 2; }

# A mid-size labelled scene, once (netCDF-3 from icelens synth; under a second).
BIN=""
for b in "$TARGET/release/icelens" "$TARGET/debug/icelens"; do [[ -x "$b" ]] && { BIN="$b"; break; }; done
MID_DIR="$PWD/out/scene_mid_${MID_LINES}x${MID_SAMPLES}"
export MID="$MID_DIR/20220301T120000_dmi_prep.nc"
if [[ ! -s "$MID" ]]; then
  if [[ -n "$BIN" ]]; then
    mkdir -p "$MID_DIR"
    "$BIN" synth --out "$MID_DIR" --size "$MID_LINES" "$MID_SAMPLES" --seed 7 --stamp 20220301T120000 >/dev/null
  else
    echo "no icelens binary in $TARGET: the mid-size scene is skipped" >&2; MID=""
  fi
fi

NATIVE="$OUTDIR/native.txt"
if [[ -z "${SUMMARY_ONLY:-}" ]]; then
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "chromium: $(${CHROMIUM:-chromium} --version 2>/dev/null | head -1 || true); page: $DIST"

# Native figures under the same load, before the browser runs.
: > "$NATIVE"
if [[ -z "${SKIP_NATIVE:-}" ]]; then
  cat "$LARGE" > /dev/null
  if [[ -x "$TARGET/release/icelens-bench-decode" ]]; then
    echo "native: read_scene of the large scene ..."
    r=$("$TARGET/release/icelens-bench-decode" "$LARGE" 1 | grep '^RESULT')
    echo "decode $(tr ' ' '\n' <<<"$r" | grep -E '^(min_s|peak_rss_bytes)=' | tr '\n' ' ')" >> "$NATIVE"
  fi
  if [[ -x "$TARGET/release/icelens" ]]; then
    for s in "$FIXTURE" ${MID:+"$MID"}; do
      echo "native: icelens evaluate $(basename "$s") ..."
      /usr/bin/time -f 'wall=%e rss_kb=%M' -o "$OUTDIR/time.txt" \
        "$TARGET/release/icelens" evaluate --model "$MODEL" "$s" > "$OUTDIR/eval.txt" 2>&1
      line=$(grep -oE '[0-9]+ x [0-9]+ px [^)]*\) in [0-9.]+ s' "$OUTDIR/eval.txt" | head -1)
      echo "evaluate $(basename "$s") $line $(cat "$OUTDIR/time.txt")" >> "$NATIVE"
    done
    if [[ -n "$MID" ]]; then
      # The page's own tiles (384 px, 128 px halo) on every core: what its CPU path computes.
      echo "native: icelens evaluate --tile 384 $(basename "$MID") ..."
      "$TARGET/release/icelens" evaluate --tile 384 --model "$MODEL" "$MID" > "$OUTDIR/eval.txt" 2>&1
      line=$(grep -oE '[0-9]+ x [0-9]+ px [^)]*\) in [0-9.]+ s' "$OUTDIR/eval.txt" | head -1)
      echo "tiles $(basename "$MID") $line threads=$(nproc)" >> "$NATIVE"
    fi
  fi
fi

echo "browser: running (progress on stderr) ..."
export FIXTURE MODEL
export NODE_PATH="$ROOT/e2e/node_modules${NODE_PATH:+:$NODE_PATH}"
start=$(date +%s)
node browser.js
echo "browser part: $(( $(date +%s) - start )) s; load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
fi

node - "$OUT_JSON" "$NATIVE" <<'JS'
const fs = require('node:fs');
const r = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const native = fs.readFileSync(process.argv[3], 'utf8').split('\n').filter(Boolean);
const MiB = 1024 * 1024; const f = (x, d = 2) => (x == null ? 'n/a' : x.toFixed(d));
const mb = (x) => (x == null ? 'n/a' : `${(x / MiB).toFixed(0)} MiB`);
// The page's tiling (src/inference.rs page_options): 384-px cores with 128-px halos, whole
// scenes up to 640 x 640 in one go. Network input pixels = sum of the tile windows.
function windowMpx(lines, samples) {
  if (lines * samples <= 640 * 640) return (lines * samples) / 1e6;
  const axis = (n) => { let s = 0; for (let r = 0; r < n; r += 384) s += Math.min(r + 384 + 128, n) - Math.max(r - 128, 0); return s; };
  return (axis(lines) * axis(samples)) / 1e6;
}
const inRate = (lines, samples, s) => (s ? `; ${f(windowMpx(lines, samples) / s, 3)} Mpx/s of tile windows (${f(windowMpx(lines, samples), 1)} Mpx)` : '');
const rows = [];
const F = r.first_load;
if (F) {
  const wasm = F.wasm.map((w) => `${w.file.replace(/-[0-9a-f]{16}/, '')} ${mb(w.bytes)} (gzip ${(w.gzip / MiB).toFixed(1)} MiB)`).join(', ');
  rows.push(['first load, empty cache: bytes fetched (page, wasm, demo scene and model)', mb(F.fetched_bytes), wasm]);
  rows.push(['  first load: wasm started / demo scene\'s SAR picture on screen', `${f(F.started_s)} s / ${f(F.picture_s)} s`, 'from navigation start']);
}
const L = r.large;
if (L) {
  const mpx = (L.lines * L.samples) / 1e6;
  rows.push([`drop -> first SAR picture, ${L.lines} x ${L.samples} netCDF-4 (${(L.file_bytes / MiB).toFixed(0)} MiB)`, `${f(L.drop_to_picture_s)} s`, `${f(mpx / L.drop_to_picture_s, 1)} Mpx/s`]);
  const ph = L.phases || {};
  const at = (k) => (ph[k] === undefined ? '?' : f(ph[k]));
  if (L.drop_to_scene_s != null) rows.push(['  drop -> the whole scene in (charts, inspector; its SAR canvas drawn)', `${f(L.drop_to_scene_s)} s`, '']);
  if (ph.decoded !== undefined) rows.push([`  the way (s from the drop): workers ready ${at('worker')}, file read ${at('read')}, picture decoded ${at('picture-decoded')}, drawn ${at('picture-ahead')}; all decoded ${at('decoded')}, in the page ${at('scene')}, drawn ${at('picture')}`, '', 'decoding workers: one per thread, up to 4']);
  rows.push(['  wasm linear memory after decode (never shrinks: the peak)', mb(L.wasm_after_decode), '']);
  rows.push(['  renderer process peak RSS after decode (VmHWM)', mb(L.renderer_hwm_after_decode), `before drop ${mb(L.renderer_hwm_before)}`]);
  if (L.cpu) {
    const c = L.cpu; const rt = c.rate;
    const label = c.finished ? `CPU (wasm) inference, whole ${L.lines} x ${L.samples} scene (${rt?.total ?? '?'} tiles)`
      : `CPU (wasm) inference, ${L.lines} x ${L.samples} scene: ${rt?.done ?? 0} of ${rt?.total ?? '?'} tiles in ${f(c.wall_s, 0)} s, extrapolated`;
    const s = c.estimated_total_s;
    rows.push([label, `${f(s, 0)} s${c.finished ? '' : ' (est.)'}`, s ? `${f(s / c.mpx)} s/Mpx, ${f(c.mpx / s, 3)} Mpx/s${inRate(L.lines, L.samples, s)}` : '']);
    rows.push(['  wasm linear memory after the CPU run (peak)', mb(L.wasm_after_cpu), `renderer peak RSS ${mb(L.renderer_hwm_after_cpu)}`]);
  }
}
const nativeTiles = native.map((n) => n.match(/^tiles (\S+) (\d+) x (\d+) px in 384 px tiles \(--tile 384\) in ([\d.]+) s threads=(\d+)/)).find(Boolean);
for (const x of r.small?.runs || []) {
  const threads = x.backend === 'cpu' && x.threads ? `, ${x.threads} workers` : '';
  rows.push([`${x.backend === 'cpu' ? 'CPU (wasm)' : 'WebGPU (SwiftShader)'} inference, ${x.label}, ${x.lines} x ${x.samples}${threads}`,
    `${f(x.seconds, 1)} s`, x.seconds ? `${f(x.s_per_mpx, 1)} s/Mpx, ${f(x.mpx_per_s, 3)} Mpx/s${inRate(x.lines, x.samples, x.seconds)}` : 'did not finish']);
  if (nativeTiles && x.backend === 'cpu' && x.seconds && x.label.startsWith(nativeTiles[1])) {
    const s = Number(nativeTiles[4]);
    rows.push([`  native, the same 384 px tiles (release, ${nativeTiles[5]} threads)`, `${f(s, 1)} s`,
      `page CPU / native = ${f(x.seconds / s)} (per Mpx, same tiles, ${x.threads ?? '?'} workers against ${nativeTiles[5]} threads)`]);
  }
}
if (r.small) rows.push(['  wasm linear memory at the end of the small runs', mb(r.small.wasm_after), `GPU process RSS ${mb(r.small.gpu_rss)}`]);
for (const n of native) {
  let m;
  if ((m = n.match(/^decode min_s=([\d.]+) peak_rss_bytes=(\d+)/))) {
    rows.push(['native read_scene of the same large scene (release, in-process)', `${f(Number(m[1]))} s`, `peak RSS ${mb(Number(m[2]))}`]);
  } else if ((m = n.match(/^evaluate (\S+) (\d+) x (\d+) px [^)]*\) in ([\d.]+) s wall=([\d.]+) rss_kb=(\d+)/))) {
    const mpx = (m[2] * m[3]) / 1e6; const s = Number(m[4]);
    rows.push([`native icelens evaluate (release, CPU), ${m[1]}, ${m[2]} x ${m[3]}`, `${f(s, 1)} s`, `${f(s / mpx, 1)} s/Mpx, ${f(mpx / s, 3)} Mpx/s; process ${m[5]} s, ${(m[6] / 1024).toFixed(0)} MiB`]);
  }
}
const w = [Math.max(...rows.map((x) => x[0].length)), Math.max(...rows.map((x) => x[1].length))];
console.log(`${'what'.padEnd(w[0])}  ${'time'.padStart(w[1])}  rate / notes`);
for (const x of rows) console.log(`${x[0].padEnd(w[0])}  ${x[1].padStart(w[1])}  ${x[2]}`);
console.log(`\ncores ${r.cpus}; load average ${r.loadavg_start.map((x) => x.toFixed(2)).join(' ')} at start, ${r.loadavg_end.map((x) => x.toFixed(2)).join(' ')} at end; WebGPU available: ${r.webgpu_available}`);
JS
