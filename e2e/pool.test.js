// The page's CPU path runs a scene's tiles in a pool of workers, one per thread the browser
// reports: the header says how many, every one of them runs tiles, and the prediction is the
// command line's with the page's 384 px tiles, score for score.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { serve, launch, openPage, dropFiles, icelens, SHARED } = require('./harness');

const MODEL = path.join(SHARED, 'reference', 'pizza_marinara.pt');
// More workers than this machine's cores would be no proof: a browser on a 2-core machine
// still reports what it is told, and three workers must then share two cores.
const THREADS = 3;
let server; let browser; let page; let dir; let scene; const pageErrors = [];

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'icelens-pool-'));
  // 1000 x 900: 3 x 3 tiles of 384 px, too large for the page to run whole (640 x 640).
  scene = path.join(dir, '20210315T101500_dmi_prep.nc');
  icelens(['synth', '--out', scene, '--size', '1000', '900', '--seed', '11']);
  server = await serve();
  browser = await launch();
  page = await openPage(browser, server, pageErrors, { viewport: { width: 1400, height: 900 } },
    `Object.defineProperty(Navigator.prototype, 'hardwareConcurrency', { get: () => ${THREADS} });`);
});

after(async () => {
  await browser?.close();
  server?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a scene of nine tiles runs on every CPU worker with the scores of icelens evaluate --tile 384', { timeout: 400000 }, async () => {
  await page.selectOption('select:has(option[value="cpu"])', 'cpu');
  await dropFiles(page, 'drop-zone', [
    { name: path.basename(scene), bytes: fs.readFileSync(scene) },
    { name: 'pizza_marinara.pt', bytes: fs.readFileSync(MODEL) },
  ]);
  await page.waitForFunction(() => document.querySelector('[data-testid="model-card"]')?.textContent.includes('pizza_marinara.pt'), null, { timeout: 30000 });
  assert.equal(await page.textContent('[data-testid="threads"]'), ` · ${THREADS} threads`);
  const summary = page.locator('[data-testid="run-summary"]');
  await page.waitForFunction(() => /on cpu/.test(document.querySelector('[data-testid="run-summary"]')?.textContent || '')
    && document.querySelector('[data-testid="scene-list"] li.active')?.textContent.includes('1000 x 900 px'), null, { timeout: 360000 });
  assert.equal(await summary.getAttribute('data-threads'), String(THREADS), await summary.textContent());
  assert.match(await summary.textContent(), new RegExp(`on cpu, ${THREADS} threads`));
  const want = JSON.parse(icelens(['evaluate', '--model', MODEL, '--tile', '384', scene, '--json'])).scenes[0];
  for (const k of ['SIC', 'SOD', 'FLOE', 'combined']) {
    assert.equal(Number(await page.textContent(`[data-testid="score-${k}"]`)), want[k], k);
  }
  assert.deepEqual(pageErrors, []);
});
