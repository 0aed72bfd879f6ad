// Browser benchmark of the page in headless Chromium (SwiftShader WebGPU, wasm CPU backend).
//
//   node bench/browser.js            (normally through bench/browser.sh)
//
// Measures, each in a fresh browser with the bundled demo scene blocked so that only the
// files named here are in the page:
//   large   drop -> first SAR picture of a realistic-size netCDF-4 scene (LARGE), wasm linear
//           memory and renderer peak RSS after decoding; then a CPU-backend run over it for at
//           most LARGE_CPU_S seconds (tile rate; cancelled when the budget runs out)
//   small   WebGPU run on a fixture (cold: first run of the model, shaders compiled meanwhile)
//           and on a second fixture (warm), then the CPU backend on both, then CPU on MID
//
// Environment: DIST (default <repo>/dist), LARGE, FIXTURE, FIXTURE2, MODEL, MID (a mid-size
// scene; skipped when unset), LARGE_CPU_S (default 300), WEBGPU_TIMEOUT_S (default 300),
// OUT_JSON (default bench/out/browser/results.json), ONLY (first,large,small), THREADS (the
// threads the browser reports, default the machine's), WEBGPU=0 (no WebGPU
// runs), CHROMIUM.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const harness = require(path.join(ROOT, 'e2e', 'harness.js'));
const { launch } = harness;

const SHARED = process.env.ICELENS_SHARED || path.resolve(ROOT, '..', 'shared');
const DIST = path.resolve(process.env.DIST || path.join(ROOT, 'dist'));
const LARGE = process.env.LARGE || path.join(__dirname, 'out', 'scene_5000x5200', '20190412T103015_dmi_prep.nc');
const FIXTURE = process.env.FIXTURE || path.join(SHARED, 'fixtures', '20190412T103015_dmi_prep.nc');
const FIXTURE2 = process.env.FIXTURE2 || path.join(SHARED, 'fixtures', '20211130T083012_dmi_prep.nc');
const MODEL = process.env.MODEL || path.join(SHARED, 'reference', 'pizza_marinara.pt');
const MID = process.env.MID || '';
const LARGE_CPU_S = Number(process.env.LARGE_CPU_S || 300);
const WEBGPU_TIMEOUT_S = Number(process.env.WEBGPU_TIMEOUT_S || 300);
const OUT_JSON = process.env.OUT_JSON || path.join(__dirname, 'out', 'browser', 'results.json');
const ONLY = (process.env.ONLY || 'first,large,small').split(',');
const USE_WEBGPU = process.env.WEBGPU !== '0';

const log = (...a) => console.error(`[${new Date().toISOString().slice(11, 19)}]`, ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const MiB = 1024 * 1024;

/** (lines, samples) of the scene on screen: the SAR canvas is drawn at the scene's resolution. */
async function sceneDims(page) {
  return page.evaluate(() => { const c = document.querySelector('canvas.sar'); return [c.height, c.width]; });
}

// ---- Chromium processes: descendants of this node process, read from /proc ----
function procTable() {
  const rows = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      const status = fs.readFileSync(`/proc/${d}/status`, 'utf8');
      const kb = (k) => Number((status.match(new RegExp(`^${k}:\\s+(\\d+)`, 'm')) || [0, 0])[1]);
      rows.push({ pid: Number(d), ppid, cmd, rss: kb('VmRSS') * 1024, hwm: kb('VmHWM') * 1024 });
    } catch { /* gone */ }
  }
  return rows;
}

function chromiumProcs() {
  const rows = procTable();
  const mine = new Set([process.pid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const r of rows) if (!mine.has(r.pid) && mine.has(r.ppid)) { mine.add(r.pid); grew = true; }
  }
  return rows.filter((r) => r.pid !== process.pid && mine.has(r.pid)).map((r) => {
    // Chromium rewrites its children's argv into one space-separated string.
    const t = r.cmd.join(' ').match(/--type=(\S+)/);
    return { ...r, type: t ? t[1] : 'browser' };
  });
}

/** Peak RSS (VmHWM) of the largest renderer and of the GPU process, and their current RSS. */
function memory() {
  const procs = chromiumProcs();
  const top = (type) => procs.filter((p) => p.type === type).sort((a, b) => b.hwm - a.hwm)[0];
  const r = top('renderer'); const g = top('gpu-process');
  return {
    renderer_hwm: r?.hwm ?? null, renderer_rss: r?.rss ?? null,
    gpu_hwm: g?.hwm ?? null, gpu_rss: g?.rss ?? null,
    all_rss: procs.reduce((s, p) => s + p.rss, 0),
  };
}

// ---- the page ----
const wasmBytes = (page) => page.evaluate(() => window.__wasm?.memory?.buffer?.byteLength ?? null);
const sceneCount = (page) => page.locator('[data-testid="scene-list"] li:not(.loading)').count();

async function waitWebgpu(page) {
  try {
    await page.waitForFunction(() => document.querySelector('[data-testid="backend"]')?.textContent === 'webgpu', null, { timeout: 60000 });
    return true;
  } catch { return false; }
}

async function pick(page, files) {
  await page.setInputFiles('[data-testid="file-input"]', files);
}

/** Picks a scene file and waits until it is read and on screen. */
async function pickScene(page, file) {
  const n = await sceneCount(page);
  await pick(page, file);
  await page.waitForFunction((k) => document.querySelectorAll('[data-testid="scene-list"] li:not(.loading)').length === k + 1
    && document.querySelector('[data-testid="scene-list"] li:last-child')?.classList.contains('active'), n, { timeout: 300000 });
}

const idle = (page, timeout) => page.waitForFunction(() => document.querySelector('[data-testid="progress"]').classList.contains('idle'), null, { timeout });

async function setBackend(page, b) {
  await page.selectOption('select:has(option[value="cpu"])', b);
  await page.waitForFunction((x) => document.querySelector('[data-testid="backend"]').textContent === x, b);
}

/** Waits for "Predicted in X s on BACKEND" of the scene on screen; polls the progress bar. */
async function waitRun(page, backend, timeoutS, onTick) {
  const t0 = Date.now();
  const samples = [];
  for (;;) {
    const st = await page.evaluate(() => ({
      scores: document.querySelector('.scores')?.textContent || '',
      progress: document.querySelector('[data-testid="progress"]')?.textContent || '',
      errors: [...document.querySelectorAll('[data-testid="error"]')].map((e) => e.textContent),
    }));
    const m = st.scores.match(/Predicted in ([\d.]+) s on (\w+)/);
    if (m && m[2] === backend) return { seconds: Number(m[1]), samples, done: true, wall_s: (Date.now() - t0) / 1000 };
    const p = st.progress.match(/tile (\d+) of (\d+)/);
    if (p) {
      const s = { t: (Date.now() - t0) / 1000, done: Number(p[1]), total: Number(p[2]) };
      if (!samples.length || samples[samples.length - 1].done !== s.done) { samples.push(s); if (onTick) onTick(s); }
    }
    const bad = st.errors.filter((e) => !/demo scene|demo story|icelens-demo\.bpk/.test(e));
    if (bad.length) throw new Error(`page error: ${bad.join(' | ')}`);
    if ((Date.now() - t0) / 1000 > timeoutS) return { seconds: null, samples, done: false, wall_s: (Date.now() - t0) / 1000 };
    await sleep(250);
  }
}

/** Tile throughput from progress samples, leaving out the first tile (start-up, compile). */
function tileRate(samples) {
  if (samples.length < 2) return null;
  const a = samples.find((s) => s.done >= 1); const b = samples[samples.length - 1];
  if (!a || b.done <= a.done) return null;
  return { tiles: b.done - a.done, seconds: b.t - a.t, per_tile_s: (b.t - a.t) / (b.done - a.done), total: b.total, done: b.done };
}

// ---- benchmarks ----
async function benchLarge(port, out) {
  const browser = await launch();
  try {
    const { page, errors } = await openPageOn(browser, port);
    const webgpu = await waitWebgpu(page);
    out.webgpu_available = webgpu;
    // A model dropped later must not start a WebGPU run over 26 Mpx on a software rasteriser.
    await setBackend(page, 'cpu');
    // Files are dropped on a page that has been open a moment, whose decoding workers have
    // started (1.5 s after the page's start; src/actions.rs).
    await page.waitForTimeout(2500);
    const before = { wasm: await wasmBytes(page), ...memory() };
    const bytes = fs.statSync(LARGE).size;
    log(`large: dropping ${LARGE} (${(bytes / MiB).toFixed(0)} MiB)`);
    // The expected SAR size: read from the file name's folder (scene_LxS) when present.
    const m = path.basename(path.dirname(LARGE)).match(/(\d+)x(\d+)/);
    const expect = m ? [Number(m[1]), Number(m[2])] : null;
    await page.evaluate((e) => { window.__bench.expect = e; }, expect);
    const tNode = Date.now();
    await pick(page, LARGE);
    await page.waitForFunction(() => window.__bench.scene !== null, null, { timeout: 300000, polling: 100 });
    const b = await page.evaluate(() => window.__bench);
    // The page's own marks of the way (src/browser/decode.rs, the viewer), from the drop.
    const phases = await page.evaluate((t0) => Object.fromEntries(performance.getEntriesByType('mark')
      .filter((m) => m.name.startsWith('icelens:') && m.startTime >= t0)
      .map((m) => [m.name.slice(8), (m.startTime - t0) / 1000])), b.t0);
    const nodeS = (Date.now() - tNode) / 1000;
    const dims = await sceneDims(page);
    const afterDecode = { wasm: await wasmBytes(page), ...memory() };
    out.large = {
      file: LARGE, file_bytes: bytes, lines: dims[0], samples: dims[1],
      drop_to_picture_s: (b.picture - b.t0) / 1000, drop_to_scene_s: (b.scene - b.t0) / 1000,
      node_call_to_scene_s: nodeS, phases,
      wasm_before: before.wasm, wasm_after_decode: afterDecode.wasm,
      renderer_hwm_before: before.renderer_hwm, renderer_hwm_after_decode: afterDecode.renderer_hwm,
      gpu_hwm_after_decode: afterDecode.gpu_hwm, chromium_rss_after_decode: afterDecode.all_rss,
    };
    log(`large: phases (s from the drop) ${Object.entries(phases).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}`);
    log(`large: picture after ${out.large.drop_to_picture_s.toFixed(2)} s, scene in after ${out.large.drop_to_scene_s.toFixed(2)} s; wasm ${(afterDecode.wasm / MiB).toFixed(0)} MiB, renderer peak ${(afterDecode.renderer_hwm / MiB).toFixed(0)} MiB`);

    if (LARGE_CPU_S > 0) {
      log(`large: CPU run for at most ${LARGE_CPU_S} s`);
      await pick(page, MODEL);
      const r = await waitRun(page, 'cpu', LARGE_CPU_S, (s) => { if (s.done % 5 === 0) log(`  tile ${s.done}/${s.total} at ${s.t.toFixed(0)} s`); });
      if (!r.done) {
        await page.click('[data-testid="cancel"]');
        await idle(page, 120000);
      }
      const after = { wasm: await wasmBytes(page), ...memory() };
      const rate = tileRate(r.samples);
      const px = dims[0] * dims[1];
      out.large.cpu = {
        finished: r.done, seconds: r.seconds, wall_s: r.wall_s, rate,
        estimated_total_s: r.done ? r.seconds : (rate ? rate.per_tile_s * rate.total : null),
        mpx: px / 1e6,
      };
      out.large.wasm_after_cpu = after.wasm;
      out.large.renderer_hwm_after_cpu = after.renderer_hwm;
    }
    out.large.page_errors = errors;
    await page.close();
  } finally {
    await browser.close();
  }
}

/// First load: a fresh browser (empty cache) opens the page; bytes fetched (wasm and all),
/// the gzip size of each wasm file (what a compressing server sends), the time until the wasm
/// has started and until the bundled demo scene's SAR picture is on screen.
async function benchFirstLoad(port, out) {
  const zlib = require('node:zlib');
  const browser = await launch();
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.addInitScript(() => {
      window.__first = { started: null, picture: null };
      addEventListener('TrunkApplicationStarted', () => { window.__first.started = performance.now(); });
      const tick = () => {
        const c = document.querySelector('canvas.sar');
        if (c && c.width > 0) { window.__first.picture = performance.now(); return; }
        requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    });
    log('first load: opening the page with an empty cache');
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForFunction(() => window.__first.picture != null, null, { timeout: 120000 });
    const timing = await page.evaluate(() => ({
      ...window.__first,
      resources: performance.getEntriesByType('resource').map((e) => ({ name: e.name, bytes: e.encodedBodySize })),
      document: performance.getEntriesByType('navigation')[0]?.encodedBodySize ?? 0,
    }));
    const wasm = fs.readdirSync(DIST).filter((f) => f.endsWith('.wasm')).map((f) => {
      const bytes = fs.readFileSync(path.join(DIST, f));
      return { file: f, bytes: bytes.length, gzip: zlib.gzipSync(bytes, { level: 9 }).length };
    });
    out.first_load = {
      started_s: timing.started / 1000,
      picture_s: timing.picture / 1000,
      fetched_bytes: timing.document + timing.resources.reduce((a, r) => a + r.bytes, 0),
      wasm,
      page_errors: errors,
    };
    log(`first load: wasm started at ${(timing.started / 1000).toFixed(2)} s, demo picture at ${(timing.picture / 1000).toFixed(2)} s`);
    await page.close();
  } finally {
    await browser.close();
  }
}

async function openPageOn(browser, port) {
  // No service worker: requests it makes would escape the routes below (and the demo model
  // would load after all, and take the scene's runs).
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 }, serviceWorkers: 'block' });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  return setup(page, errors, port);
}

async function setup(page, errors, port) {
  // Only the files dropped here: the bundled demo scene and model are not fetched (the demo
  // model would otherwise run over every dropped scene first, on the same cores).
  await page.route('**/assets/demo/**', (r) => r.abort());
  await page.route('**/models/icelens-demo.bpk', (r) => r.abort());
  // THREADS=n: the browser reports n threads, so the page runs n CPU workers.
  if (process.env.THREADS) {
    await page.addInitScript(`Object.defineProperty(Navigator.prototype, 'hardwareConcurrency', { get: () => ${Number(process.env.THREADS)} });`);
  }
  await page.addInitScript(() => {
    window.__bench = { t0: null, picture: null, scene: null, expect: null };
    addEventListener('TrunkApplicationStarted', (e) => { window.__wasm = e.detail.wasm; });
    // The moment the file input reports files (what a drop does), then every frame until the
    // SAR canvas has the expected size: the page fills it (putImageData) in the same task in
    // which it sizes it, so that frame is the first one showing the picture.
    addEventListener('input', (e) => {
      if (!e.target.matches || !e.target.matches('[data-testid="file-input"]')) return;
      const b = window.__bench;
      b.t0 = performance.now(); b.picture = null; b.scene = null;
      if (!b.expect) return;
      // The first picture is the dropped scene's SAR picture on screen: drawn ahead by the
      // decoding worker (canvas.ahead) or, once the scene is in, on the SAR canvas. The
      // scene counts as in once the SAR canvas has it.
      const fits = (c) => c && c.width === b.expect[1] && c.height === b.expect[0];
      const tick = (now) => {
        if (b.picture === null && (fits(document.querySelector('canvas.ahead.shown')) || fits(document.querySelector('canvas.sar')))) { b.picture = performance.now(); b.frame = now; }
        if (fits(document.querySelector('canvas.sar'))) { b.scene = performance.now(); return; }
        requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    }, true);
  });
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.locator('[data-testid="backend"]').waitFor({ timeout: 60000 });
  return { page, errors };
}

async function benchSmall(port, out) {
  const browser = await launch();
  try {
    const { page, errors } = await openPageOn(browser, port);
    let webgpu = await waitWebgpu(page);
    out.webgpu_available = webgpu;
    const runs = [];
    if (!USE_WEBGPU) webgpu = false;
    const dimsOf = async () => sceneDims(page);
    const record = async (label, backend, r) => {
      const d = await dimsOf();
      const px = d[0] * d[1];
      const row = { label, backend, lines: d[0], samples: d[1], mpx: px / 1e6, seconds: r.seconds, done: r.done, tiles: r.samples.length ? r.samples[r.samples.length - 1].total : null };
      // The CPU workers that ran its tiles, as the page says under the scores.
      row.threads = Number(await page.locator('[data-testid="run-summary"]').getAttribute('data-threads').catch(() => null)) || null;
      row.s_per_mpx = r.seconds != null ? r.seconds / row.mpx : null;
      row.mpx_per_s = r.seconds != null ? row.mpx / r.seconds : null;
      runs.push(row);
      log(`${label} on ${backend}: ${r.seconds} s (${d[0]} x ${d[1]})`);
      return row;
    };
    await pickScene(page, FIXTURE);
    if (webgpu) {
      log('small: WebGPU run on the fixture (cold)');
      await pick(page, MODEL);
      await record(`${path.basename(FIXTURE)} (first run)`, 'webgpu', await waitRun(page, 'webgpu', WEBGPU_TIMEOUT_S));
      // The second fixture: the model's shaders are compiled by now.
      log('small: WebGPU run on the second fixture (warm)');
      await pickScene(page, FIXTURE2);
      await record(`${path.basename(FIXTURE2)} (warm)`, 'webgpu', await waitRun(page, 'webgpu', WEBGPU_TIMEOUT_S));
      await idle(page, 600000);
      log('small: CPU backend');
      await setBackend(page, 'cpu');
      await record(path.basename(FIXTURE2), 'cpu', await waitRun(page, 'cpu', 300));
    } else {
      await setBackend(page, 'cpu');
      await pick(page, MODEL);
      await pickScene(page, FIXTURE2);
      await record(path.basename(FIXTURE2), 'cpu', await waitRun(page, 'cpu', 300));
    }
    // The other labelled scene follows on the CPU; show it to read its time.
    await idle(page, 300000);
    await page.locator('[data-testid="scene-list"] li', { hasText: path.basename(FIXTURE).slice(0, 19) }).first().click();
    await record(`${path.basename(FIXTURE)}${webgpu ? '' : ' (first run)'}`, 'cpu', await waitRun(page, 'cpu', 300));
    if (MID) {
      log(`small: CPU run on ${MID}`);
      await pickScene(page, MID);
      await record(`${path.basename(MID)} (generated)`, 'cpu', await waitRun(page, 'cpu', 400));
    }
    out.small = { runs, wasm_after: await wasmBytes(page), ...memory(), page_errors: errors };
    await page.close();
  } finally {
    await browser.close();
  }
}

(async () => {
  const server = await harness.serve(DIST);
  const port = server.address().port;
  const out = { dist: DIST, started: new Date().toISOString(), loadavg_start: require('node:os').loadavg(), cpus: require('node:os').cpus().length };
  try {
    if (ONLY.includes('first')) await benchFirstLoad(port, out);
    if (ONLY.includes('large')) await benchLarge(port, out);
    if (ONLY.includes('small')) await benchSmall(port, out);
  } finally {
    server.close();
    out.loadavg_end = require('node:os').loadavg();
    fs.mkdirSync(path.dirname(OUT_JSON), { recursive: true });
    fs.writeFileSync(OUT_JSON, JSON.stringify(out, null, 2));
    log(`wrote ${OUT_JSON}`);
  }
})().catch((e) => { console.error(e); process.exit(1); });
