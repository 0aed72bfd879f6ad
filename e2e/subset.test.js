// Fine-tuning on a subset in the page: the area in view, a condition from the table, scenes
// balanced by a dimension. Each run draws the patches `icelens finetune` draws with the same
// settings (the same counts and the same validation loss before training, both on burn's
// CPU backend), and the before/after table scores the scenes it did not learn from as
// `icelens evaluate` does.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { serve, launch, openPage, dropFiles, icelens, icelensRun, SHARED } = require('./harness');

const ROOT = path.resolve(__dirname, '..');
const DEMO = path.join(ROOT, 'assets', 'demo', '20210315T101500_dmi_prep.nc');
const MODEL = path.join(ROOT, 'models', 'icelens-demo.bpk');
const FIXTURES = ['20190412T103015_dmi_prep.nc', '20200117T211533_cis_prep.nc'].map((f) => path.join(SHARED, 'fixtures', f));
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'icelens-subset-'));
let server; let browser; let page; const pageErrors = [];

// The run's settings, in the page's form and as `icelens finetune` options.
const SETTINGS = { patches: 12, 'patch-size': 64, batch: 4, epochs: 1, steps: 2, lr: '0.001', val: '0.25', patience: 0, seed: 3 };

before(async () => {
  server = await serve();
  browser = await launch();
  page = await openPage(browser, server, pageErrors);
  await page.selectOption('select:has(option[value="cpu"])', 'cpu');
  await page.locator('[data-testid="score-combined"]').waitFor({ timeout: 120000 });
  // One at a time, so that the page lists them (and draws from them) in this order.
  for (const [i, f] of FIXTURES.entries()) {
    await dropFiles(page, 'drop-zone', [{ name: path.basename(f), bytes: fs.readFileSync(f) }]);
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="scene-list"] li:not(.loading)').length === n, i + 2, { timeout: 60000 });
  }
  await page.selectOption('[data-testid="train-device"]', 'cpu');
  for (const [k, v] of Object.entries(SETTINGS)) {
    await page.fill(`[data-testid="train-${k}"]`, String(v));
    await page.dispatchEvent(`[data-testid="train-${k}"]`, 'change');
  }
});

after(async () => {
  await browser?.close();
  server?.close();
  fs.rmSync(TMP, { recursive: true, force: true });
});

/** `icelens finetune` with the page's settings: its patch counts and its "before" loss. */
function finetune(extra, scenes) {
  const args = ['finetune', '--model', MODEL, '--device', 'cpu', '--out', path.join(TMP, 'cli.bpk'),
    ...Object.entries(SETTINGS).flatMap(([k, v]) => [`--${k}`, String(v)]), ...extra, ...scenes];
  const r = icelensRun(args);
  assert.equal(r.status, 0, r.stderr);
  const counts = r.stderr.match(/(\d+) training and (\d+) validation patches/);
  const loss = r.stderr.match(/before: validation ([0-9.]+)/);
  assert.ok(counts && loss, r.stderr);
  return { train: Number(counts[1]), val: Number(counts[2]), before: Number(loss[1]) };
}

/** Runs the form as set, from the demo model, to the end; the page's patch counts and "before" loss. */
async function train() {
  // The model list shows once there are two (after the first run, the fine-tuned one).
  if (await page.locator('[data-testid="model-list"]').isVisible()) {
    await page.locator('[data-testid="model-list"] li', { hasText: 'icelens-demo.bpk' }).click();
  }
  await page.waitForFunction(() => document.querySelector('[data-testid="model-card"]').textContent.includes('icelens-demo.bpk'));
  await page.click('[data-testid="train-run"]');
  await page.waitForFunction(() => ['done', 'failed'].includes(document.querySelector('[data-testid="train-status"]').dataset.phase), null, { timeout: 240000 });
  const status = await page.textContent('[data-testid="train-status"]');
  const counts = status.match(/(\d+) training \/ (\d+) validation patches/);
  assert.ok(counts, status);
  const loss = Number(await page.getAttribute('[data-testid="train-before"]', 'data-val-loss'));
  return { train: Number(counts[1]), val: Number(counts[2]), before: loss };
}

/** The page's run and the command line's drew the same patches. */
function samePatches(pageRun, cli, what) {
  assert.deepEqual([pageRun.train, pageRun.val], [cli.train, cli.val], what);
  // burn's CPU backend in wasm and natively: the same arithmetic, summed in other orders.
  assert.ok(Math.abs(pageRun.before - cli.before) <= 1e-4 * cli.before, `${what}: page ${pageRun.before}, command line ${cli.before}`);
}

test('the area in view: patches from the rectangle shown, and scenes it did not learn from scored before and after', { timeout: 400000 }, async () => {
  await page.locator('[data-testid="scene-list"] li', { hasText: '20210315T101500' }).click();
  await page.focus('.viewport');
  for (let i = 0; i < 3; i++) await page.keyboard.press('+');
  await page.selectOption('[data-testid="train-area"]', 'view');
  const run = await train();
  const used = page.locator('[data-testid="train-area-used"]');
  assert.equal(await used.getAttribute('data-scene'), '20210315T101500_dmi');
  const rect = await used.getAttribute('data-area');
  const [, , h, w] = rect.split(',').map(Number);
  assert.ok(h * w > 0 && h * w < 384 * 384 / 2, `the view shows part of the scene: ${rect}`);
  samePatches(run, finetune(['--area', rect], [DEMO]), `--area ${rect}`);
  // The whole scene would have given other patches.
  const whole = finetune([], [DEMO]);
  assert.ok(Math.abs(whole.before - run.before) > 1e-3 * whole.before, `whole scene ${whole.before}, area ${run.before}`);

  // Before and after: the scene it learnt from, and the two it did not, scored as the
  // command line scores the original and the fine-tuned model on them.
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('[data-testid="train-compare-row"]')];
    return rows.length === 4 && rows.every((r) => r.dataset.combined !== '');
  }, null, { timeout: 240000 });
  const rows = await page.$$eval('[data-testid="train-compare-row"]', (rs) => rs.map((r) => [r.dataset.group, r.dataset.which, Number(r.dataset.combined)]));
  assert.deepEqual(rows.map((r) => r.slice(0, 2)), [['training scenes', 'before'], ['training scenes', 'after'], ['other scenes', 'before'], ['other scenes', 'after']]);
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid="train-export-bpk"]')]);
  const tuned = path.join(TMP, 'tuned.bpk');
  await dl.saveAs(tuned);
  const pooled = (model, scenes) => JSON.parse(icelens(['evaluate', '--model', model, ...scenes, '--json'])).pooled.combined;
  assert.equal(rows[0][2], pooled(MODEL, [DEMO]));
  assert.equal(rows[1][2], pooled(tuned, [DEMO]));
  assert.equal(rows[2][2], pooled(MODEL, FIXTURES));
  assert.equal(rows[3][2], pooled(tuned, FIXTURES));
  assert.notEqual(rows[2][2], rows[3][2], 'the fine-tuned model predicts other scenes otherwise');
  assert.deepEqual(pageErrors, []);
});

test('a condition picked in the table: patches centred on its pixels, as --condition draws them', { timeout: 400000 }, async () => {
  const row = page.locator('[data-testid="condition-row"][data-dimension="land"]').first();
  await row.waitFor({ timeout: 120000 });
  await row.click();
  await page.selectOption('[data-testid="train-area"]', 'condition');
  const hint = await page.locator('[data-testid="training"] p.hint', { hasText: 'Patches centred on ' }).textContent();
  const condition = hint.replace('Patches centred on ', '');
  assert.match(condition, /^land = /);
  const run = await train();
  const scenes = [DEMO, ...FIXTURES];
  samePatches(run, finetune(['--condition', condition], scenes), `--condition ${condition}`);
  const all = finetune([], scenes);
  assert.ok(Math.abs(all.before - run.before) > 1e-3 * all.before, `every pixel ${all.before}, ${condition} ${run.before}`);
  assert.deepEqual(pageErrors, []);
});

test('balanced by ice service: each service drawn as often, as --balance draws them', { timeout: 400000 }, async () => {
  await page.selectOption('[data-testid="train-area"]', 'scenes');
  await page.selectOption('[data-testid="train-balance"]', 'service');
  const run = await train();
  // Two DMI scenes and one CIS scene: DMI's half is split between its two.
  const draws = await page.$$eval('[data-testid="train-draw"]', (ds) => ds.map((d) => [d.dataset.scene, Number(d.dataset.share)]));
  assert.deepEqual(draws.map(([s]) => s), ['20210315T101500_dmi', '20190412T103015_dmi', '20200117T211533_cis']);
  for (const [[, share], want] of draws.map((d, i) => [d, [0.25, 0.25, 0.5][i]])) assert.ok(Math.abs(share - want) < 1e-12, JSON.stringify(draws));
  samePatches(run, finetune(['--balance', 'service'], [DEMO, ...FIXTURES]), '--balance service');
  assert.deepEqual(pageErrors, []);
});
