// Fine-tuning in the page: the demo model trained further on the demo scene (WebGPU through
// SwiftShader), its losses and scores, before/after, and the exported .pt reloaded.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { serve, launch, openPage, dropFiles, icelens, OUTPUT } = require('./harness');

const ROOT = path.resolve(__dirname, '..');
const DEMO = path.join(ROOT, 'assets', 'demo', '20210315T101500_dmi_prep.nc');
let server; let browser; let page; const pageErrors = [];

before(async () => {
  fs.mkdirSync(OUTPUT, { recursive: true });
  server = await serve();
  browser = await launch();
  page = await openPage(browser, server, pageErrors);
  await page.waitForFunction(() => document.querySelector('[data-testid="backend"]').textContent === 'webgpu', null, { timeout: 30000 });
  // Inference (the before/after runs) on the CPU; training itself always runs on WebGPU.
  await page.selectOption('select:has(option[value="cpu"])', 'cpu');
  await page.locator('[data-testid="score-combined"]').waitFor({ timeout: 120000 });
});

after(async () => {
  await browser?.close();
  server?.close();
});

const fill = async (id, value) => {
  await page.fill(`[data-testid="${id}"]`, String(value));
  await page.dispatchEvent(`[data-testid="${id}"]`, 'change');
};

test('fine-tuning the demo model lowers the validation loss and shows before/after', { timeout: 400000 }, async () => {
  const demoScore = Number(await page.textContent('[data-testid="score-combined"]'));
  await fill('train-patches', 16);
  await fill('train-patch-size', 64);
  await fill('train-batch', 4);
  await fill('train-epochs', 3);
  await fill('train-steps', 4);
  await fill('train-lr', '0.002');
  await fill('train-patience', 0);
  await page.click('[data-testid="train-run"]');
  // While it trains, the page answers: the status moves and the pause button works.
  await page.waitForFunction(() => document.querySelector('[data-testid="train-status"]').dataset.phase === 'running', null, { timeout: 120000 });
  await page.click('[data-testid="train-pause"]');
  await page.waitForFunction(() => document.querySelector('[data-testid="train-status"]').dataset.phase === 'paused', null, { timeout: 60000 });
  const pausedAt = await page.locator('[data-testid="train-status"]').textContent();
  await page.waitForTimeout(1500);
  assert.equal(await page.locator('[data-testid="train-status"]').textContent(), pausedAt, 'no step while paused');
  // The viewer still answers: a key zooms it.
  const zoomBefore = await page.textContent('[data-testid="zoom"]');
  await page.focus('.viewport');
  await page.keyboard.press('+');
  await page.waitForFunction((z) => document.querySelector('[data-testid="zoom"]').textContent !== z, zoomBefore, { timeout: 5000 });
  await page.click('[data-testid="train-pause"]');
  await page.waitForFunction(() => document.querySelector('[data-testid="train-status"]').dataset.phase === 'done', null, { timeout: 300000 });

  const before = Number(await page.getAttribute('[data-testid="train-before"]', 'data-val-loss'));
  const epochs = await page.$$eval('[data-testid="train-epoch"]', (rows) => rows.map((r) => Number(r.dataset.valLoss)));
  assert.equal(epochs.length, 3);
  assert.ok(epochs.every(Number.isFinite), JSON.stringify(epochs));
  assert.ok(Math.min(...epochs) < before, `validation loss ${before} -> ${epochs}`);
  const svg = await page.innerHTML('[data-testid="train-curve"]');
  assert.match(svg, /<svg/);
  assert.match(svg, /validation \(epoch\)/);
  assert.equal((svg.match(/<circle/g) || []).length, 6, 'three epochs, train and validation markers');

  // The fine-tuned model joins the page's models and is run on the scene.
  const names = await page.$$eval('[data-testid="model-list"] li .scene-name', (els) => els.map((e) => e.textContent));
  assert.deepEqual(names, ['icelens-demo.bpk', 'icelens-demo fine-tuned']);
  const card = await page.textContent('[data-testid="model-card"]');
  assert.match(card, /icelens page: fine-tuned from icelens-demo\.bpk/);
  await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="train-compare-row"]')].every((r) => r.dataset.combined !== ''),
    null, { timeout: 200000 });
  const rows = await page.$$eval('[data-testid="train-compare-row"]', (rs) => rs.map((r) => ({ group: r.dataset.group, which: r.dataset.which, combined: Number(r.dataset.combined) })));
  assert.deepEqual(rows.map((r) => r.which), ['before', 'after']);
  assert.equal(rows[0].group, 'training scenes');
  assert.equal(rows[0].combined, demoScore, 'before = the demo model on the demo scene');
  const tunedScore = Number(await page.textContent('[data-testid="score-combined"]'));
  assert.equal(rows[1].combined, tunedScore, 'after = the fine-tuned model on the demo scene');
  // Both maps are drawn, and they differ.
  const maps = await page.evaluate(() => ['before', 'after'].map((w) => {
    const c = document.querySelector(`[data-testid="train-map-${w}"]`);
    return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);
  }));
  assert.equal(maps[0].length, 384 * 384 * 4);
  assert.notDeepEqual(maps[0], maps[1]);
  await page.locator('[data-testid="training"]').screenshot({ path: path.join(OUTPUT, 'fine-tuning.png') });
  assert.deepEqual(pageErrors, []);
});

test('the exported .pt reloads with the same outputs, in the page and in the CLI', { timeout: 300000 }, async () => {
  const tunedScore = Number(await page.textContent('[data-testid="score-combined"]'));
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid="train-export-pt"]')]);
  assert.equal(dl.suggestedFilename(), 'icelens-demo-fine-tuned.pt');
  const pt = path.join(OUTPUT, 'icelens-demo-fine-tuned.pt');
  await dl.saveAs(pt);
  const bytes = fs.readFileSync(pt);
  assert.equal(bytes.subarray(0, 4).toString('binary'), 'PK\x03\x04');
  assert.ok(bytes.includes(Buffer.from('model_state_dict')), 'a model_state_dict entry like the notebooks write');

  for (const [id, ext] of [['train-export-safetensors', 'safetensors'], ['train-export-bpk', 'bpk']]) {
    const [d] = await Promise.all([page.waitForEvent('download'), page.click(`[data-testid="${id}"]`)]);
    assert.equal(d.suggestedFilename(), `icelens-demo-fine-tuned.${ext}`);
  }

  // Dropped back on the page, it predicts exactly what the model it came from predicted.
  await dropFiles(page, 'drop-zone', [{ name: 'icelens-demo-fine-tuned.pt', bytes }]);
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="model-list"] li').length === 3, null, { timeout: 30000 });
  await page.waitForFunction(() => document.querySelector('[data-testid="model-card"]').textContent.includes('icelens-demo-fine-tuned.pt'), null, { timeout: 30000 });
  await page.waitForFunction((want) => {
    const el = document.querySelector('[data-testid="score-combined"]');
    return el && Number(el.textContent) === want;
  }, tunedScore, { timeout: 120000 });

  // The command line reads the same file to the same score.
  const out = icelens(['evaluate', '--model', pt, DEMO, '--json']);
  const cli = JSON.parse(out);
  assert.equal(cli.pooled.combined, tunedScore);
});

test('without WebGPU the page trains on the CPU (burn flex), and the loss still falls', { timeout: 300000 }, async () => {
  const models = await page.locator('[data-testid="model-list"] li').count();
  await page.selectOption('[data-testid="train-device"]', 'cpu');
  // The settings of the WebGPU run above, so the two can be compared.
  await fill('train-patches', 16);
  await fill('train-patch-size', 64);
  await fill('train-batch', 4);
  await fill('train-epochs', 3);
  await fill('train-steps', 4);
  await fill('train-lr', '0.002');
  await page.click('[data-testid="train-run"]');
  await page.waitForFunction(() => ['done', 'failed'].includes(document.querySelector('[data-testid="train-status"]').dataset.phase), null, { timeout: 240000 });
  assert.equal(await page.getAttribute('[data-testid="train-status"]', 'data-phase'), 'done', await page.textContent('[data-testid="train-status"]'));
  const before = Number(await page.getAttribute('[data-testid="train-before"]', 'data-val-loss'));
  const epochs = await page.$$eval('[data-testid="train-epoch"]', (rows) => rows.map((r) => Number(r.dataset.valLoss)));
  assert.equal(epochs.length, 3);
  assert.ok(Math.min(...epochs) < before, `validation loss ${before} -> ${epochs}`);
  assert.ok(Number(await page.getAttribute('[data-testid="train-status"]', 'data-step-seconds')) > 0);
  assert.equal(await page.locator('[data-testid="model-list"] li').count(), models + 1);
  assert.deepEqual(pageErrors, []);
});

test('a plain model grows into an attention U-Net in the page, trains, and exports what the CLI scores alike', { timeout: 400000 }, async () => {
  const card = await page.textContent('[data-testid="model-card"]');
  assert.match(card, /^.*U-Net, /s);
  assert.doesNotMatch(card, /attention U-Net/);
  const filters = card.match(/filters \[([\d, ]+)\]/)[1].replace(/ /g, '');
  const models = await page.locator('[data-testid="model-list"] li').count();
  await page.selectOption('[data-testid="train-start-from"]', 'smaller');
  await fill('train-filters', filters);
  await page.check('[data-testid="train-attention"]');
  await fill('train-patches', 8);
  await fill('train-patch-size', 64);
  await fill('train-batch', 2);
  await fill('train-epochs', 2);
  await fill('train-steps', 2);
  await page.click('[data-testid="train-run"]');
  await page.waitForFunction(() => ['done', 'failed'].includes(document.querySelector('[data-testid="train-status"]').dataset.phase), null, { timeout: 300000 });
  assert.equal(await page.getAttribute('[data-testid="train-status"]', 'data-phase'), 'done', await page.textContent('[data-testid="train-status"]'));
  assert.equal(await page.locator('[data-testid="model-list"] li').count(), models + 1);
  // The new model is an attention U-Net of the same filters, shown with its gates and layers.
  const grown = await page.textContent('[data-testid="model-card"]');
  assert.match(grown, new RegExp(`attention U-Net, ${filters.split(',').length} levels, filters \\[${filters.replace(/,/g, ', ')}\\]`));
  assert.match(await page.textContent('[data-testid="model-gates"]'), /attention gates/);
  const layers = await page.$$eval('[data-testid="layer-select"] option', (o) => o.map((x) => x.value).filter((v) => v.startsWith('attention-')));
  assert.equal(layers.length, filters.split(',').length);
  await page.waitForFunction(() => document.querySelector('[data-testid="score-combined"]'), null, { timeout: 120000 });
  const score = Number(await page.textContent('[data-testid="score-combined"]'));

  // Its .pt is an attention checkpoint the command line reads to the same score.
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid="train-export-pt"]')]);
  const pt = path.join(OUTPUT, 'attention-grown.pt');
  await dl.saveAs(pt);
  const cli = JSON.parse(icelens(['evaluate', '--model', pt, DEMO, '--json']));
  assert.equal(cli.pooled.combined, score);
  const maps = path.join(OUTPUT, 'attention-grown-maps');
  fs.rmSync(maps, { recursive: true, force: true });
  icelens(['predict', '--model', pt, DEMO, '--upload', path.join(OUTPUT, 'attention-grown.nc'), '--attention', maps]);
  assert.equal(fs.readdirSync(maps).filter((f) => /_attention_\d\.npy$/.test(f)).length, filters.split(',').length);
  assert.deepEqual(pageErrors, []);
});

test('Stop ends a run within a step: no step follows, and a run stopped before its first epoch adds no model', { timeout: 300000 }, async () => {
  const models = await page.locator('[data-testid="model-list"] li').count();
  await fill('train-patches', 8);
  await fill('train-patch-size', 64);
  await fill('train-batch', 2);
  await fill('train-epochs', 5);
  await fill('train-steps', 20);
  await page.click('[data-testid="train-run"]');
  const status = '[data-testid="train-status"]';
  await page.waitForFunction((sel) => /step [2-9] of 100/.test(document.querySelector(sel).textContent), status, { timeout: 200000 });
  await page.click('[data-testid="train-cancel"]');
  await page.waitForFunction((sel) => document.querySelector(sel).dataset.phase === 'cancelled', status, { timeout: 30000 });
  const stoppedAt = await page.textContent(status);
  const step = Number(stoppedAt.match(/step (\d+) of 100/)[1]);
  assert.ok(step < 20, stoppedAt);
  await page.waitForTimeout(2000);
  assert.equal(await page.textContent(status), stoppedAt, 'a step after Stop');
  assert.equal(await page.locator('[data-testid="model-list"] li').count(), models);
  assert.ok(await page.isEnabled('[data-testid="train-run"]'), 'a new run can start');
  assert.deepEqual(pageErrors, []);
});
