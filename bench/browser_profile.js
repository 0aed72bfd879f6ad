// Where the drop -> first SAR picture time goes: samples the page's main thread with the
// DevTools profiler while the large scene is read and drawn, and prints the functions with the
// most self time (wasm function names come from the module's name section).
//
//   DIST=/path/to/dist node bench/browser_profile.js [SCENE]
'use strict';
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const { launch, serve } = require(path.join(ROOT, 'e2e', 'harness.js'));
const DIST = path.resolve(process.env.DIST || path.join(ROOT, 'dist'));
const SCENE = process.argv[2] || path.join(__dirname, 'out', 'scene_5000x5200', '20190412T103015_dmi_prep.nc');

(async () => {
  const server = await serve(DIST);
  const browser = await launch();
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 }, serviceWorkers: 'block' });
    await page.route('**/assets/demo/**', (r) => r.abort());
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    await page.locator('[data-testid="backend"]').waitFor();
    await page.waitForTimeout(3000);
    const before = await page.evaluate(() => document.querySelector('canvas.sar')?.width ?? 0);
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Profiler.enable');
    await cdp.send('Profiler.setSamplingInterval', { interval: 1000 });
    await cdp.send('Profiler.start');
    await page.setInputFiles('[data-testid="file-input"]', SCENE);
    await page.waitForFunction((w) => (document.querySelector('canvas.sar')?.width ?? 0) !== w, before, { timeout: 120000, polling: 100 });
    await page.waitForTimeout(300);
    const { profile } = await cdp.send('Profiler.stop');
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const self = new Map();
    profile.samples.forEach((id, i) => {
      const f = byId.get(id).callFrame;
      const k = (f.functionName || f.url || '(anonymous)').replace(/::h[0-9a-f]{16}$/, '');
      self.set(k, (self.get(k) || 0) + (profile.timeDeltas[i] || 0));
    });
    const total = [...self.values()].reduce((a, b) => a + b, 0);
    console.log(`sampled ${(total / 1e6).toFixed(2)} s (from the pick to 0.3 s after the picture); self time:`);
    for (const [k, v] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 20)) {
      console.log(`${(v / 1000).toFixed(0).padStart(7)} ms  ${k.slice(0, 120)}`);
    }
  } finally {
    await browser.close();
    server.close();
  }
})().catch((e) => { console.error(e); process.exit(1); });
