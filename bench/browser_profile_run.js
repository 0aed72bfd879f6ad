// Where the page's thread spends a CPU run over a large scene: samples the main thread with
// the DevTools profiler for PROFILE_S seconds (default 20) once the run has started, and
// prints the functions with the most self time. The tiles themselves run in workers; what is
// left here is building each tile's input, pasting its answer and drawing.
//
//   DIST=/path/to/dist node bench/browser_profile_run.js [SCENE] [MODEL]
'use strict';
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const { launch, serve } = require(path.join(ROOT, 'e2e', 'harness.js'));
const DIST = path.resolve(process.env.DIST || path.join(ROOT, 'dist'));
const SHARED = process.env.ICELENS_SHARED || path.resolve(ROOT, '..', 'shared');
const SCENE = process.argv[2] || path.join(__dirname, 'out', 'scene_5000x5200', '20190412T103015_dmi_prep.nc');
const MODEL = process.argv[3] || path.join(SHARED, 'reference', 'pizza_marinara.pt');
const PROFILE_S = Number(process.env.PROFILE_S || 20);

(async () => {
  const server = await serve(DIST);
  const browser = await launch();
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 }, serviceWorkers: 'block' });
    await page.route('**/assets/demo/**', (r) => r.abort());
    await page.route('**/models/icelens-demo.bpk', (r) => r.abort());
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    await page.locator('[data-testid="backend"]').waitFor();
    await page.waitForTimeout(3000);
    await page.selectOption('select:has(option[value="cpu"])', 'cpu');
    await page.setInputFiles('[data-testid="file-input"]', SCENE);
    await page.waitForFunction(() => (document.querySelector('canvas.sar')?.width ?? 0) > 1000, null, { timeout: 120000, polling: 200 });
    await page.setInputFiles('[data-testid="file-input"]', MODEL);
    await page.waitForFunction(() => /tile [1-9]\d* of/.test(document.querySelector('[data-testid="progress"]')?.textContent || ''), null, { timeout: 120000, polling: 200 });
    const cdp = await page.context().newCDPSession(page);
    if (process.env.TRACE_S) {
      // What the page's thread does outside JavaScript (style, layout, paint, raster): a
      // timeline trace, summed by event name.
      const events = [];
      cdp.on('Tracing.dataCollected', (d) => events.push(...d.value));
      const done = new Promise((r) => cdp.once('Tracing.tracingComplete', r));
      await cdp.send('Tracing.start', { categories: 'devtools.timeline,disabled-by-default-devtools.timeline,blink,cc,gpu,v8', transferMode: 'ReportEvents' });
      await page.waitForTimeout(Number(process.env.TRACE_S) * 1000);
      await cdp.send('Tracing.end');
      await done;
      const byName = new Map(); const threads = new Map();
      for (const e of events) if (e.ph === 'M' && e.name === 'thread_name') threads.set(`${e.pid}:${e.tid}`, e.args.name);
      for (const e of events) {
        if (e.ph !== 'X' || !e.dur) continue;
        const k = `${threads.get(`${e.pid}:${e.tid}`) || e.tid} ${e.name}`;
        byName.set(k, (byName.get(k) || 0) + e.dur);
      }
      console.log(`trace of ${process.env.TRACE_S} s: longest events by thread and name (inclusive)`);
      for (const [k, v] of [...byName.entries()].sort((x, y) => y[1] - x[1]).slice(0, 30)) console.log(`${(v / 1000).toFixed(0).padStart(7)} ms  ${k}`);
    }
    await cdp.send('Profiler.enable');
    await cdp.send('Profiler.setSamplingInterval', { interval: 1000 });
    await cdp.send('Profiler.start');
    const t0 = await page.textContent('[data-testid="progress"]');
    await page.waitForTimeout(PROFILE_S * 1000);
    const t1 = await page.textContent('[data-testid="progress"]');
    const { profile } = await cdp.send('Profiler.stop');
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const self = new Map();
    profile.samples.forEach((id, i) => {
      const f = byId.get(id).callFrame;
      const k = (f.functionName || f.url || '(anonymous)').replace(/::h[0-9a-f]{16}$/, '');
      self.set(k, (self.get(k) || 0) + (profile.timeDeltas[i] || 0));
    });
    const total = [...self.values()].reduce((a, b) => a + b, 0);
    console.log(`progress: "${t0.trim()}" -> "${t1.trim()}"`);
    console.log(`sampled ${(total / 1e6).toFixed(2)} s of the page's thread during the run; self time:`);
    for (const [k, v] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
      console.log(`${(v / 1000).toFixed(0).padStart(7)} ms  ${k.slice(0, 140)}`);
    }
  } finally {
    await browser.close();
    server.close();
  }
})().catch((e) => { console.error(e); process.exit(1); });
