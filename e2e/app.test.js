// The page opens on the demo scene, reads dropped scenes, and survives bad files.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { serve, launch, dropFiles, icelens, SHARED, OUTPUT } = require('./harness');

let server; let browser; let page; const consoleErrors = [];

before(async () => {
  server = await serve();
  browser = await launch();
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
});

after(async () => {
  await browser?.close();
  server?.close();
});

const sceneItems = () => page.locator('[data-testid="scene-list"] li:not(.loading)');

/** Share of opaque pixels and number of distinct colours on a canvas. */
async function canvasStats(selector) {
  return page.evaluate((sel) => {
    const c = document.querySelector(sel);
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let opaque = 0; const colours = new Set();
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] > 0) { opaque++; if (colours.size < 500) colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]); }
    }
    return { width: c.width, height: c.height, opaque: opaque / (d.length / 4), colours: colours.size };
  }, selector);
}

test('the demo scene renders on first load', async () => {
  await sceneItems().first().waitFor({ timeout: 30000 });
  assert.match(await sceneItems().first().textContent(), /20210315T101500_dmi/);
  const sar = await canvasStats('canvas.sar');
  assert.equal(sar.width, 384);
  assert.ok(sar.opaque > 0.4, `SAR covers ${sar.opaque}`);
  assert.ok(sar.colours > 50, `SAR has ${sar.colours} grey levels`);
  const layer = await canvasStats('canvas.layer');
  assert.ok(layer.opaque > 0.3, `ice chart layer covers ${layer.opaque}`);
  assert.ok(layer.colours >= 3 && layer.colours <= 11, `SIC layer colours ${layer.colours}`);
});

test('the bundled demo model predicts the demo scene with the CLI scores', { timeout: 240000 }, async () => {
  await page.locator('[data-testid="model-card"]').waitFor({ timeout: 30000 });
  const card = await page.textContent('[data-testid="model-card"]');
  assert.match(card, /icelens-demo\.bpk/);
  assert.match(card, /synthetic/);
  await page.locator('[data-testid="score-combined"]').waitFor({ timeout: 200000 });
  const root = path.resolve(__dirname, '..');
  const out = icelens(['evaluate', '--model',
    path.join(root, 'models', 'icelens-demo.bpk'), path.join(root, 'assets', 'demo', '20210315T101500_dmi_prep.nc'), '--json']);
  const want = JSON.parse(out).pooled.combined;
  assert.equal(Number(await page.textContent('[data-testid="score-combined"]')), want);
  assert.ok(want > 50, `the demo model scores ${want} on its demo scene`);
});

test('dropped netCDF-4 and netCDF-3 scenes join the list', async () => {
  const names = ['20190412T103015_dmi_prep.nc', '20200117T211533_cis_prep.nc'];
  await dropFiles(page, 'drop-zone', names.map((n) => ({ name: n, bytes: fs.readFileSync(path.join(SHARED, 'fixtures', n)) })));
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="scene-list"] li:not(.loading)').length === 3);
  const text = await page.textContent('[data-testid="scene-list"]');
  assert.match(text, /20190412T103015_dmi/);
  assert.match(text, /SGRDIEA/);
  assert.match(text, /netcdf3/);
  const sar = await canvasStats('canvas.sar');
  assert.ok([500, 450].includes(sar.width), `canvas width ${sar.width}`);
});

test('a truncated file shows an error and the loaded scenes stay', async () => {
  const full = fs.readFileSync(path.join(SHARED, 'fixtures', '20190412T103015_dmi_prep.nc'));
  await page.setInputFiles('[data-testid="file-input"]', {
    name: 'broken_prep.nc', mimeType: 'application/octet-stream', buffer: full.subarray(0, 700000),
  });
  const error = page.locator('[data-testid="error"]').filter({ hasText: 'broken_prep.nc' });
  await error.waitFor({ timeout: 20000 });
  assert.match(await error.textContent(), /truncated/);
  assert.equal(await sceneItems().count(), 3);
  await sceneItems().first().click();
  const sar = await canvasStats('canvas.sar');
  assert.equal(sar.width, 384);
});

test('layer and opacity controls change the overlay', async () => {
  await page.selectOption('[data-testid="layer-select"]', 'chart-SOD');
  assert.match(await page.textContent('.legend'), /Stage of Development/);
  const sod = await canvasStats('canvas.layer');
  assert.ok(sod.opaque > 0.3, `SOD layer covers ${sod.opaque} of the scene`);
  // Every drawn pixel has a colour of the legend, and the chart shows more than one class.
  const { drawn, legend } = await page.evaluate(() => {
    const c = document.querySelector('canvas.layer');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const drawn = new Set();
    for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0) drawn.add(`rgb(${d[i]}, ${d[i + 1]}, ${d[i + 2]})`);
    const legend = [...document.querySelectorAll('.legend .swatch')].map((s) => getComputedStyle(s).backgroundColor);
    return { drawn: [...drawn], legend };
  });
  assert.ok(drawn.length >= 2, `SOD colours ${drawn}`);
  for (const c of drawn) assert.ok(legend.includes(c), `${c} is not in the legend ${legend}`);
  await page.locator('[data-testid="opacity"]').fill('30');
  const opacity = await page.$eval('canvas.layer', (c) => getComputedStyle(c).opacity);
  assert.equal(opacity, '0.3');
  fs.mkdirSync(OUTPUT, { recursive: true });
  await page.screenshot({ path: path.join(OUTPUT, 'main-view.png') });
  assert.deepEqual(consoleErrors, []);
});

test('the view lives in the URL fragment and a link restores it', async () => {
  // The state of the previous test is written to the fragment within a second.
  await page.waitForFunction(() => /layer=chart-SOD/.test(location.hash), null, { timeout: 5000 });
  assert.match(await page.evaluate(() => location.hash), /scene=20210315T101500_dmi/);
  // A link to a zoomed view of the demo scene with the FLOE chart, opened afresh.
  const link = `http://127.0.0.1:${server.address().port}/#scene=20210315T101500_dmi&layer=chart-FLOE&zoom=4&x=100.0&y=120.0`;
  const other = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await other.goto(link);
  await other.locator('[data-testid="scene-list"] li:not(.loading)').first().waitFor({ timeout: 30000 });
  await other.waitForFunction(() => document.querySelector('[data-testid="zoom"]')?.textContent === '400 %', null, { timeout: 10000 });
  assert.equal(await other.$eval('[data-testid="layer-select"]', (s) => s.value), 'chart-FLOE');
  assert.match(await other.textContent('.legend'), /Floe/);
  // The picture is centred on sample 100, line 120: the stack's offset says so.
  const t = await other.$eval('.stack', (el) => new DOMMatrix(getComputedStyle(el).transform));
  const vp = await other.$eval('[data-testid="viewport"]', (el) => [el.clientWidth, el.clientHeight]);
  assert.ok(Math.abs(t.e + 100 * 4 - vp[0] / 2) < 1 && Math.abs(t.f + 120 * 4 - vp[1] / 2) < 1, `${t.e} ${t.f} ${vp}`);
  await other.close();
});
