// The whole dataset in the page: the atlas of the real AI4Arctic lists (equal to `icelens
// dataset`), lists and folders of one's own, fine-tuning that follows the test set, the upload
// package (equal to `icelens predict`'s file) and results of a sharded evaluation (equal to
// `icelens merge`).
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { serve, launch, openPage, dropFiles, icelens, SHARED, OUTPUT } = require('./harness');

const FIX = path.join(SHARED, 'fixtures');
const LABELLED = ['20190412T103015_dmi_prep.nc', '20200117T211533_cis_prep.nc'];
const TEST_STYLE = '20211130T083012_dmi_prep.nc';
const MODEL = path.join(SHARED, 'reference', 'pizza_marinara.pt');
const OUT = path.join(OUTPUT, 'dataset');
let server; let browser; const pageErrors = [];

before(async () => {
  fs.rmSync(OUT, { recursive: true, force: true });
  fs.mkdirSync(OUT, { recursive: true });
  server = await serve();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  server?.close();
  assert.deepEqual(pageErrors, []);
});

/** A fresh tab of the page, its errors recorded with the others. */
const newTab = () => openPage(browser, server, pageErrors);

const atlasRows = (page) => page.$$eval('[data-testid="atlas-row"]', (rs) => rs.map((r) => ({
  group: r.dataset.group, train: Number(r.dataset.train), test: Number(r.dataset.test),
  weight: r.dataset.weight === '' ? null : Number(r.dataset.weight), most: r.dataset.mostDifferent === 'true',
})));

const cliRows = (atlas, facet) => atlas.facets.find((f) => f.facet === facet).groups.map((g) => ({
  group: g.group, train: g.train, test: g.test, weight: g.weight, most: g.most_different,
}));

test('the atlas shows the real dataset as `icelens dataset` does, and lists of one\'s own', { timeout: 300000 }, async () => {
  const cli = JSON.parse(icelens(['dataset', '--json']));
  assert.equal(cli.train_scenes, 512);
  const page = await newTab();
  await page.click('[data-testid="atlas"] > summary');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="atlas-row"]').length > 0, null, { timeout: 30000 });
  assert.match(await page.textContent('[data-testid="atlas-train-source"]'), /^512 training scenes · AI4Arctic/);
  assert.match(await page.textContent('[data-testid="atlas-test-source"]'), /^20 test scenes · AI4Arctic/);
  for (const facet of ['service', 'region', 'month', 'hour']) {
    await page.selectOption('[data-testid="atlas-facet"]', facet);
    await page.waitForFunction((f) => document.querySelector('[data-testid="atlas-table"] th').textContent.length > 0 && document.querySelector('[data-testid="atlas-facet"]').value === f, facet);
    const rows = await atlasRows(page);
    assert.deepEqual(rows, cliRows(cli, facet), facet);
    assert.equal(rows.filter((r) => r.most).length, 1, `${facet}: one group marked`);
  }
  // Class balance from the shipped pixel table, per group of the facet, as the CLI computes it.
  await page.selectOption('[data-testid="atlas-facet"]', 'service');
  await page.selectOption('[data-testid="atlas-chart"]', 'SOD');
  const classRows = await page.$$eval('[data-testid="atlas-class-row"]', (rs) => rs.map((r) => ({ group: r.dataset.group, shares: r.dataset.shares.split(',').map(Number) })));
  const want = [cli.classes.overall, ...cli.classes.groups.filter((g) => g.facet === 'service')]
    .map((g) => ({ group: g.group, shares: g.charts.find((c) => c.chart === 'SOD').shares }));
  assert.deepEqual(classRows, want);
  assert.ok(classRows.length >= 3, 'all, and each service');

  // A training list of one's own (text), and a test folder whose files are listed, not read.
  const trainList = path.join(OUT, 'mine.txt');
  fs.writeFileSync(trainList, '# my scenes\n20190101T100000_dmi_prep.nc\n20190201T100000_dmi_prep.nc\n20190301T100000_cis_prep.nc\n');
  const folder = path.join(OUT, 'testset');
  fs.mkdirSync(folder, { recursive: true });
  for (const f of ['20200101T100000_cis_prep.nc', '20200201T100000_cis_prep.nc', 'notes.txt']) fs.writeFileSync(path.join(folder, f), 'not read');
  await page.setInputFiles('[data-testid="atlas-train-list"]', trainList);
  await page.setInputFiles('[data-testid="atlas-test-folder"]', folder);
  await page.waitForFunction(() => document.querySelector('[data-testid="atlas-test-source"]').textContent.startsWith('2 test scenes'), null, { timeout: 10000 });
  const mine = JSON.parse(icelens(['dataset', '--train', trainList, '--test', folder, '--json']));
  assert.deepEqual(await atlasRows(page), cliRows(mine, 'service'));
  const weights = (await atlasRows(page)).map((r) => [r.group, r.weight]);
  assert.deepEqual(weights.map(([g]) => g), ['cis', 'dmi']);
  assert.ok(Math.abs(weights[0][1] - 3) < 1e-12 && weights[1][1] === 0, JSON.stringify(weights));
  // The class table of the shipped set does not cover these names: its balance rows go.
  assert.match(await page.textContent('[data-testid="atlas"]'), /3 training scenes have no row in the table/);

  // A broken list: an error naming it, the atlas as it was.
  await page.setInputFiles('[data-testid="atlas-train-list"]', { name: 'broken.json', mimeType: 'application/json', buffer: Buffer.from('[1, 2') });
  await page.locator('[data-testid="error"]', { hasText: 'broken.json' }).waitFor({ timeout: 10000 });
  assert.match(await page.textContent('[data-testid="atlas-train-source"]'), /^3 training scenes · mine\.txt/);
  await page.close();
});

test('fine-tuning follows the atlas\'s test set: groups drawn with their test shares', { timeout: 300000 }, async () => {
  const page = await newTab();
  await dropFiles(page, 'drop-zone', LABELLED.map((f) => ({ name: f, bytes: fs.readFileSync(path.join(FIX, f)) })));
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="scene-list"] li:not(.loading)').length === 3, null, { timeout: 60000 });
  // A test set of cis scenes only: every draw from the cis fixture (balanced alone: 1/3 each).
  await page.click('[data-testid="atlas"] > summary');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="atlas-row"]').length > 0, null, { timeout: 30000 });
  await page.setInputFiles('[data-testid="atlas-test-list"]', { name: 'cis-only.txt', mimeType: 'text/plain', buffer: Buffer.from('20200101T100000_cis_prep.nc\n20200201T100000_cis_prep.nc\n') });
  await page.waitForFunction(() => document.querySelector('[data-testid="atlas-test-source"]').textContent.startsWith('2 test scenes'), null, { timeout: 10000 });
  const fill = async (id, value) => { await page.fill(`[data-testid="${id}"]`, String(value)); await page.dispatchEvent(`[data-testid="${id}"]`, 'change'); };
  await fill('train-patches', 8); await fill('train-patch-size', 64); await fill('train-batch', 4);
  await fill('train-epochs', 1); await fill('train-steps', 1); await fill('train-patience', 0);
  await page.selectOption('[data-testid="train-balance"]', 'service');
  const draws = async () => {
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="train-draw"]').length === 3, null, { timeout: 120000 });
    return Object.fromEntries(await page.$$eval('[data-testid="train-draw"]', (ds) => ds.map((d) => [d.dataset.scene, Number(d.dataset.share)])));
  };
  const settle = () => page.waitForFunction(() => ['done', 'failed', 'cancelled', 'idle'].includes(document.querySelector('[data-testid="train-status"]').dataset.phase), null, { timeout: 240000 });
  // Balanced by service without the atlas: dmi (two scenes) and cis (one) drawn equally.
  await page.click('[data-testid="train-run"]');
  const equal = await draws();
  await settle();
  assert.equal(equal['20200117T211533_cis'], 0.5, JSON.stringify(equal));
  assert.equal(equal['20190412T103015_dmi'] + equal['20210315T101500_dmi'], 0.5);
  // Following the test set: all from cis.
  await page.check('[data-testid="train-follow-test"]');
  await page.click('[data-testid="train-run"]');
  await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="train-draw"]')].some((d) => d.dataset.share === '1'), null, { timeout: 120000 });
  const follow = await draws();
  await settle();
  assert.deepEqual(follow, { '20210315T101500_dmi': 0, '20190412T103015_dmi': 0, '20200117T211533_cis': 1 });
  // A test set none of the chosen scenes' groups is in: refused, with the reason.
  await page.setInputFiles('[data-testid="atlas-test-list"]', { name: 'nic-only.txt', mimeType: 'text/plain', buffer: Buffer.from('20200101T100000_nic_prep.nc\n') });
  await page.waitForFunction(() => document.querySelector('[data-testid="atlas-test-source"]').textContent.includes('nic-only.txt'), null, { timeout: 10000 });
  await page.click('[data-testid="train-run"]');
  await page.locator('[data-testid="error"]', { hasText: 'has a share above 0' }).waitFor({ timeout: 30000 });
  assert.match(await page.locator('[data-testid="error"]', { hasText: 'has a share above 0' }).textContent(), /nic-only\.txt/);
  await page.close();
});

test('the upload package from the page equals `icelens predict`\'s file', { timeout: 400000 }, async () => {
  const want = path.join(OUT, 'cli_upload.nc');
  icelens(['predict', '--model', MODEL, '--upload', want, path.join(FIX, TEST_STYLE)]);
  const page = await newTab();
  // The CPU path, the one `icelens predict` runs (WebGPU is chosen first where there is one).
  await page.waitForFunction(() => document.querySelector('[data-testid="backend"]').textContent === 'webgpu', null, { timeout: 30000 });
  await page.selectOption('select:has(option[value="cpu"])', 'cpu');
  await dropFiles(page, 'drop-zone', [TEST_STYLE, LABELLED[0]].map((f) => ({ name: f, bytes: fs.readFileSync(path.join(FIX, f)) })));
  await dropFiles(page, 'drop-zone', [{ name: 'pizza_marinara.pt', bytes: fs.readFileSync(MODEL) }]);
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="model-list"] li').length === 2, null, { timeout: 60000 });
  const button = page.locator('[data-testid="package"]');
  await page.waitForFunction(() => !document.querySelector('[data-testid="package"]').disabled, null, { timeout: 60000 });
  assert.equal(await button.textContent(), 'Upload package (1 test scene)');
  const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 300000 }), button.click()]);
  assert.equal(dl.suggestedFilename(), 'upload_package.nc');
  const got = path.join(OUT, 'page_upload.nc');
  await dl.saveAs(got);
  assert.ok(fs.readFileSync(want).length > 1000);
  assert.ok(fs.readFileSync(got).equals(fs.readFileSync(want)), 'the page\'s package differs from icelens predict\'s');
  await page.waitForFunction(() => !document.querySelector('[data-testid="package-progress"]'), null, { timeout: 10000 });
  await page.close();
});

test('results of a sharded evaluation load into "Where is it worst" as `icelens merge` pools them', { timeout: 400000 }, async () => {
  const scenes = [...LABELLED, TEST_STYLE].map((f) => path.join(FIX, f));
  const parts = [1, 2, 3].map((k) => path.join(OUT, `part-${k}.json`));
  parts.forEach((p, i) => {
    try {
      icelens(['evaluate', '--model', MODEL, ...scenes, '--shard', `${i + 1}/3`, '--partial', p]);
    } catch (e) { /* the test-style scene is recorded as failed in its part */ }
  });
  let merged;
  const whole = path.join(OUT, 'merged.json');
  try {
    merged = icelens(['merge', ...parts, '--by', 'all', '--json', '--out', whole]);
  } catch (e) { merged = e.stdout; } // exit 1: the test-style scene could not be scored
  const cli = JSON.parse(merged);
  const page = await newTab();
  const drop = (files) => dropFiles(page, 'drop-zone', files.map((f) => ({ name: path.basename(f), bytes: fs.readFileSync(f) })));
  await drop(parts.slice(0, 2));
  await page.locator('[data-testid="loaded-results"]', { hasText: 'shard 3/3 is missing' }).waitFor({ timeout: 30000 });
  assert.equal(await page.locator('td[data-model="pizza_marinara.pt (loaded)"]').count(), 0, 'nothing shown while a shard is missing');
  await drop(parts.slice(2));
  await page.locator('[data-testid="loaded-results"]', { hasText: '2 scenes, 1 could not be scored' }).waitFor({ timeout: 30000 });
  const column = async () => Object.fromEntries(await page.$$eval('[data-testid="condition-row"]', (rs) => rs.flatMap((r) => {
    const td = r.querySelector('td[data-model="pizza_marinara.pt (loaded)"][data-model-score]');
    return td ? [[`${r.dataset.dimension}=${r.dataset.group}`, Number(td.dataset.modelScore)]] : [];
  })));
  const expect = Object.fromEntries(cli.breakdown.rows.map((r) => [`${r.dimension}=${r.group}`, r.models[0].scores.combined]));
  const got = await column();
  assert.ok(Object.keys(got).length > 10, JSON.stringify(got));
  for (const [k, v] of Object.entries(got)) assert.equal(v, expect[k], k);
  // A part of another run is refused by name; the merged file alone gives the same table.
  const bad = JSON.parse(fs.readFileSync(parts[0], 'utf8'));
  bad.models[0].fingerprint = 'fnv1a64:0000000000000000:1';
  await dropFiles(page, 'drop-zone', [{ name: 'other-run.json', bytes: Buffer.from(JSON.stringify(bad)) }]);
  await page.locator('[data-testid="error"]', { hasText: 'other-run.json' }).waitFor({ timeout: 30000 });
  await page.click('[data-testid="clear-results"]');
  await page.waitForFunction(() => !document.querySelector('[data-testid="loaded-results"]'));
  await drop([whole]);
  await page.locator('[data-testid="loaded-results"]', { hasText: 'merged.json: 2 scenes' }).waitFor({ timeout: 30000 });
  assert.deepEqual(await column(), got);
  await page.close();
});
