// Several labelled scenes and two models: the page ranks the conditions where the model is
// worst with the numbers `icelens evaluate --by all` prints, highlights a condition, exports
// the table; the viewer zooms, pans, swipes and inspects pixels.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const harness = require('./harness');
const { serve, launch, openPage, dropFiles, SHARED, OUTPUT } = harness;

const ROOT = path.resolve(__dirname, '..');
const DEMO = path.join(ROOT, 'assets', 'demo', '20210315T101500_dmi_prep.nc');
const DEMO_MODEL = path.join(ROOT, 'models', 'icelens-demo.bpk');
const SCENES = ['20190412T103015_dmi_prep.nc', '20200117T211533_cis_prep.nc'].map((n) => path.join(SHARED, 'fixtures', n));
const PT = path.join(SHARED, 'reference', 'pizza_marinara.pt');
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'icelens-e2e-'));
const ST = path.join(TMP, 'pizza_marinara.safetensors');
let server; let browser; let page; const pageErrors = [];

const icelens = (...args) => harness.icelens(args);

before(async () => {
  // The second model is the first one written as safetensors by `icelens convert`.
  icelens('convert', '--model', PT, '--out', ST);
  server = await serve();
  browser = await launch();
  page = await openPage(browser, server, pageErrors);
  // The CPU backend: SwiftShader's WebGPU would take minutes for six runs.
  await page.waitForFunction(() => document.querySelector('[data-testid="backend"]').textContent === 'webgpu', null, { timeout: 30000 });
  await page.selectOption('select:has(option[value="cpu"])', 'cpu');
});

after(async () => {
  await browser?.close();
  server?.close();
  fs.rmSync(TMP, { recursive: true, force: true });
});

/** The page's ranked rows: dimension, group and each model's shown score. */
const pageRows = () => page.$$eval('[data-testid="condition-row"]', (rows) => rows.map((r) => ({
  dimension: r.dataset.dimension,
  group: r.dataset.group,
  scores: [...r.querySelectorAll('td[data-model-score]')].map((td) => Number(td.dataset.modelScore)),
})));

const same = (a, b) => (Number.isNaN(a) && b === null) || a === b;

test('the conditions table equals `icelens evaluate --by all` for the models loaded', { timeout: 300000 }, async () => {
  await dropFiles(page, 'drop-zone', [
    ...SCENES.map((p) => ({ name: path.basename(p), bytes: fs.readFileSync(p) })),
    { name: path.basename(PT), bytes: fs.readFileSync(PT) },
    { name: path.basename(ST), bytes: fs.readFileSync(ST) },
  ]);
  // Three labelled scenes (the demo and two fixtures), each scored by the bundled demo model
  // and the two dropped ones.
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('[data-testid="condition-row"][data-dimension="scene"]')];
    return rows.length === 3 && rows.every((r) => r.querySelectorAll('td[data-model-score]').length === 3);
  }, null, { timeout: 240000 });
  const names = await page.$$eval('.condition-table th.model', (th) => th.map((t) => t.title));
  assert.deepEqual([...names].sort(), ['icelens-demo.bpk', 'pizza_marinara.pt', 'pizza_marinara.safetensors']);
  const paths = { 'icelens-demo.bpk': DEMO_MODEL, 'pizza_marinara.pt': PT, 'pizza_marinara.safetensors': ST };
  // The CLI with the models in the page's order, so differences are taken the same way.
  const cli = JSON.parse(icelens('evaluate', ...names.flatMap((n) => ['--model', paths[n]]), DEMO, ...SCENES, '--by', 'all', '--json'));
  assert.deepEqual(cli.breakdown.models, names);
  const want = cli.breakdown.rows;
  for (const metric of ['combined', 'SIC']) {
    if (metric !== 'combined') await page.selectOption('[data-testid="rank-select"]', metric);
    const got = await pageRows();
    assert.equal(got.length, want.length, 'as many rows as the CLI');
    assert.ok(got.length > 15, `${got.length} rows`);
    for (const row of got) {
      const w = want.find((r) => r.dimension === row.dimension && r.group === row.group);
      assert.ok(w, `CLI has ${row.dimension}/${row.group}`);
      row.scores.forEach((s, i) => assert.ok(same(s, w.models[i].scores[metric]), `${row.dimension}/${row.group} model ${names[i]} ${metric}: page ${s}, CLI ${w.models[i].scores[metric]}`));
      // The same weights in two formats score the same everywhere.
      const [a, b] = ['pizza_marinara.pt', 'pizza_marinara.safetensors'].map((n) => row.scores[names.indexOf(n)]);
      assert.ok(same(a, Number.isNaN(b) ? null : b), `${row.dimension}/${row.group}: ${a} vs ${b}`);
    }
    // Worst first: the shown scores of the first model never decrease.
    const first = got.map((r) => r.scores[0]).filter((s) => !Number.isNaN(s));
    for (let i = 1; i < first.length; i++) assert.ok(first[i] >= first[i - 1], `ranked at ${i}`);
  }
  await page.selectOption('[data-testid="rank-select"]', 'combined');
  assert.deepEqual(pageErrors, []);
});

test('clicking a condition highlights its pixels and zooms to its worst tile', async () => {
  const fit = await page.textContent('[data-testid="zoom"]');
  const row = page.locator('[data-testid="condition-row"][data-dimension="land"]').first();
  await row.click();
  await page.waitForFunction((z) => document.querySelector('[data-testid="zoom"]').textContent !== z, fit);
  const lit = await page.evaluate(() => {
    const c = document.querySelector('canvas.highlight');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let yes = 0; let no = 0;
    for (let i = 0; i < d.length; i += 4) { if (d[i] === 255 && d[i + 1] === 230) yes++; else if (d[i + 3] === 150) no++; }
    return { yes, no };
  });
  assert.ok(lit.yes > 1000 && lit.no > 1000, JSON.stringify(lit));
  assert.match(await row.getAttribute('class'), /active/);
  fs.mkdirSync(OUTPUT, { recursive: true });
  await page.screenshot({ path: path.join(OUTPUT, 'conditions.png') });
});

test('the breakdown exports as CSV and JSON', async () => {
  const [csv] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid="export-csv"]')]);
  const text = fs.readFileSync(await csv.path(), 'utf8');
  const lines = text.trim().split('\n');
  assert.equal(lines[0], 'dimension,group,model,SIC,SOD,FLOE,combined,pixels_SIC,pixels_SOD,pixels_FLOE,scenes,small');
  const rows = await page.locator('[data-testid="condition-row"]').count();
  assert.equal(lines.length - 1, rows * 3);
  const [json] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid="export-json"]')]);
  const doc = JSON.parse(fs.readFileSync(await json.path(), 'utf8'));
  assert.deepEqual([...doc.models].sort(), ['icelens-demo.bpk', 'pizza_marinara.pt', 'pizza_marinara.safetensors']);
  assert.equal(doc.rows.length, rows);
});

test('charts of the breakdown and of the loaded scenes are drawn', async () => {
  const first = await page.$eval('[data-testid="condition-row"]', (r) => r.dataset.group);
  const chart = await page.locator('[data-testid="scores-chart"] svg').textContent();
  assert.ok(chart.includes(first), `the chart names ${first}`);
  assert.match(chart, /higher is better/);
  await page.click('.conditions details.classes summary');
  assert.equal(await page.locator('[data-testid="confusion-chart"] svg').count(), 9, 'three charts per model');
  assert.match(await page.locator('[data-testid="confusion-chart"] svg').first().innerHTML(), /reference/);
  await page.click('.conditions details.dataset summary');
  assert.match(await page.locator('[data-testid="dataset-chart"]').first().innerHTML(), /Scenes by/);
});

test('several models: pick one, and see where it is right and the other wrong', async () => {
  const items = page.locator('[data-testid="model-list"] li');
  assert.equal(await items.count(), 3);
  await items.filter({ hasText: 'pizza_marinara.pt' }).click();
  assert.match(await page.textContent('[data-testid="model-card"]'), /pizza_marinara\.pt/);
  await page.selectOption('[data-testid="layer-select"]', 'vs-SOD');
  assert.match(await page.textContent('.legend'), /both wrong/);
  // pizza_marinara against the demo model (the first loaded): they disagree both ways.
  const px = await page.evaluate(() => {
    const c = document.querySelector('canvas.layer');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const n = { green: 0, red: 0, grey: 0, other: 0 };
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] === 0) continue;
      const [r, g, b] = [d[i], d[i + 1], d[i + 2]];
      if (g > r + 100) n.green++;
      else if (r > g + 100) n.red++;
      else if (Math.abs(r - g) < 8 && Math.abs(g - b) < 8) n.grey++;
      else n.other++;
    }
    return n;
  });
  assert.ok(px.green > 100 && px.red > 100 && px.grey > 100 && px.other === 0, JSON.stringify(px));
  const [png] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid="export-png"]')]);
  const bytes = fs.readFileSync(await png.path());
  assert.equal(bytes.subarray(1, 4).toString(), 'PNG');
  assert.ok(bytes.readUInt32BE(16) >= 1000, 'at least 1000 px wide');
  await page.selectOption('[data-testid="layer-select"]', 'pred-SIC');
});

test('the viewer zooms with the keyboard, swipes and inspects pixels', async () => {
  const viewport = page.locator('[data-testid="viewport"]');
  await page.click('[data-testid="fit"]');
  const fit = parseFloat(await page.textContent('[data-testid="zoom"]'));
  await viewport.focus();
  await page.keyboard.press('+');
  await page.keyboard.press('+');
  const zoomed = parseFloat(await page.textContent('[data-testid="zoom"]'));
  assert.ok(zoomed > fit * 1.5, `${fit} -> ${zoomed}`);
  await page.keyboard.press('ArrowLeft');
  await page.keyboard.press('0');
  assert.equal(parseFloat(await page.textContent('[data-testid="zoom"]')), fit);
  const box = await viewport.boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  const inspector = await page.textContent('[data-testid="inspector"]');
  assert.match(inspector, /line \d+, sample \d+/);
  assert.match(inspector, /° [NS], .*° [EW]/);
  assert.match(inspector, /SIC.*%/s);
  await page.click('[data-testid="swipe"]');
  await page.locator('[data-testid="swipe-handle"]').waitFor();
  const clip = await page.$eval('canvas.compare', (c) => c.style.clipPath);
  assert.match(clip, /inset/);
  await page.click('[data-testid="swipe"]');
  assert.deepEqual(pageErrors, []);
});
