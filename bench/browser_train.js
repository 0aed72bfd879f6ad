// Training steps in the page, in headless Chromium: the fine-tuning panel's own loop (burn's
// autodiff on WebGPU, which is SwiftShader on a machine without a GPU, and on burn's CPU
// backend in wasm), on 8 x 256 x 256 batches of the bundled demo scene, for the bundled demo
// model and for pizza_marinara.
//
//   node bench/browser_train.js   (DIST, ICELENS_SHARED, STEPS, MODELS=demo,pizza, DEVICES=webgpu,cpu)
//
// Prints seconds per step (the first step, which compiles the shaders, is reported apart) and
// writes bench/out/browser/train.json.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const { serve, launch } = require(path.join(ROOT, 'e2e', 'harness.js'));
const SHARED = process.env.ICELENS_SHARED || path.resolve(ROOT, '..', 'shared');
const DIST = path.resolve(process.env.DIST || path.join(ROOT, 'dist'));
const STEPS = Number(process.env.STEPS || 3);
const MODELS = (process.env.MODELS || 'demo,pizza').split(',');
const DEVICES = (process.env.DEVICES || 'webgpu,cpu').split(',');
const OUT = path.join(__dirname, 'out', 'browser', 'train.json');
const log = (...a) => console.error(`[${new Date().toISOString().slice(11, 19)}]`, ...a);

async function run(which, device) {
  const server = await serve(DIST);
  const browser = await launch();
  try {
    const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    await page.waitForFunction(() => document.querySelector('[data-testid="backend"]')?.textContent === 'webgpu', null, { timeout: 60000 });
    await page.waitForFunction(() => document.querySelector('[data-testid="model-card"]')?.textContent.includes('icelens-demo.bpk'), null, { timeout: 60000 });
    // Inference on the CPU meanwhile, so that it does not share SwiftShader with training.
    await page.selectOption('select:has(option[value="cpu"])', 'cpu');
    if (which === 'pizza') {
      await page.setInputFiles('[data-testid="file-input"]', [path.join(SHARED, 'reference', 'pizza_marinara.pt')]);
      await page.waitForFunction(() => document.querySelector('[data-testid="model-card"]')?.textContent.includes('pizza_marinara.pt'), null, { timeout: 60000 });
    }
    await page.waitForFunction(() => document.querySelector('[data-testid="progress"]').classList.contains('idle'), null, { timeout: 300000 });
    const fill = async (id, v) => { await page.fill(`[data-testid="${id}"]`, String(v)); await page.dispatchEvent(`[data-testid="${id}"]`, 'change'); };
    // 8 training patches (one batch) and one validation patch of 256 px.
    await fill('train-patches', 9);
    await fill('train-patch-size', 256);
    await fill('train-batch', 8);
    await fill('train-epochs', 1);
    await fill('train-steps', STEPS);
    await fill('train-val', '0.12');
    await page.selectOption('[data-testid="train-device"]', device);
    const t0 = Date.now();
    await page.click('[data-testid="train-run"]');
    await page.waitForFunction(() => ['done', 'failed'].includes(document.querySelector('[data-testid="train-status"]').dataset.phase), null, { timeout: 3600000 });
    const status = await page.$eval('[data-testid="train-status"]', (e) => ({ ...e.dataset, text: e.textContent }));
    const result = {
      model: which,
      device,
      batch: '8 x 256 x 256',
      steps: STEPS,
      phase: status.phase,
      first_step_s: Number(status.firstStepSeconds),
      step_s: Number(status.stepSeconds),
      total_s: (Date.now() - t0) / 1000,
    };
    log(which, device, JSON.stringify(result), status.text);
    return result;
  } finally {
    await browser.close();
    server.close();
  }
}

(async () => {
  const results = [];
  for (const m of MODELS) for (const d of DEVICES) results.push(await run(m, d));
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(OUT, JSON.stringify(results, null, 2));
  console.log(JSON.stringify(results, null, 2));
})().catch((e) => { console.error(e); process.exit(1); });
