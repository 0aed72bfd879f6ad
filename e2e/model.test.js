// A dropped checkpoint runs over a dropped scene on WebGPU and on the CPU, and the scores the
// page shows are the ones `icelens evaluate` prints for the same files.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { serve, launch, dropFiles, icelens, SHARED, OUTPUT } = require('./harness');

const SCENE = '20190412T103015_dmi_prep.nc';
const MODEL = 'pizza_marinara.pt';
let server; let browser; let page; const pageErrors = [];

before(async () => {
  server = await serve();
  browser = await launch();
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
  await page.locator('[data-testid="scene-list"] li:not(.loading)').first().waitFor({ timeout: 30000 });
});

after(async () => {
  await browser?.close();
  server?.close();
});

/** What the command line says about the same scene and model. */
function cliScores(model = path.join(SHARED, 'reference', MODEL)) {
  const out = icelens(['evaluate', '--model', model, path.join(SHARED, 'fixtures', SCENE), '--json']);
  return JSON.parse(out).scenes[0];
}

async function pageScores() {
  const read = async (k) => Number(await page.textContent(`[data-testid="score-${k}"]`));
  return { SIC: await read('SIC'), SOD: await read('SOD'), FLOE: await read('FLOE'), combined: await read('combined') };
}

test('dropping a scene and a checkpoint predicts on WebGPU with the CLI scores', { timeout: 400000 }, async () => {
  await page.waitForFunction(() => document.querySelector('[data-testid="backend"]').textContent === 'webgpu', null, { timeout: 30000 });
  await dropFiles(page, 'drop-zone', [
    { name: SCENE, bytes: fs.readFileSync(path.join(SHARED, 'fixtures', SCENE)) },
    { name: MODEL, bytes: fs.readFileSync(path.join(SHARED, 'reference', MODEL)) },
  ]);
  await page.waitForFunction(() => document.querySelector('[data-testid="model-card"]')?.textContent.includes('pizza_marinara.pt'), null, { timeout: 30000 });
  assert.match(await page.textContent('[data-testid="model-card"]'), /4 levels.*16, 32, 32, 32.*168523/s);
  await page.locator('[data-testid="score-combined"]').waitFor({ timeout: 360000 });
  assert.match(await page.textContent('.scores'), /on webgpu/);
  const want = cliScores();
  const got = await pageScores();
  for (const k of ['SIC', 'SOD', 'FLOE', 'combined']) assert.equal(got[k], want[k], k);
  fs.mkdirSync(OUTPUT, { recursive: true });
  await page.screenshot({ path: path.join(OUTPUT, 'prediction-webgpu.png') });
});

test('the CPU backend gives the same scores', { timeout: 400000 }, async () => {
  await page.selectOption('select:has(option[value="cpu"])', 'cpu');
  assert.equal(await page.textContent('[data-testid="backend"]'), 'cpu');
  await page.waitForFunction(() => /on cpu/.test(document.querySelector('.scores')?.textContent || ''), null, { timeout: 360000 });
  const want = cliScores();
  const got = await pageScores();
  for (const k of ['SIC', 'SOD', 'FLOE', 'combined']) assert.equal(got[k], want[k], k);
});

test('error and confidence layers draw over the scene', async () => {
  await page.selectOption('[data-testid="layer-select"]', 'error-SOD');
  assert.match(await page.textContent('.legend'), /wrong class/);
  const red = await page.evaluate(() => {
    const c = document.querySelector('canvas.layer');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let wrong = 0; let right = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i] === 235 && d[i + 3] === 230) wrong++;
      if (d[i] === 40 && d[i + 3] === 90) right++;
    }
    return { wrong, right };
  });
  // SOD F1 is about 33 %: both kinds of pixels are plentiful.
  assert.ok(red.wrong > 10000 && red.right > 10000, JSON.stringify(red));
  await page.selectOption('[data-testid="layer-select"]', 'conf-SIC');
  assert.match(await page.textContent('.legend'), /softmax probability/);
});

/** A stored zip with one member `<dir>/data.pkl`, written by hand (a torch.save layout). */
function storedZip(dir, pkl) {
  const name = Buffer.from(`${dir}/data.pkl`);
  const crc = require('node:zlib').crc32 ? require('node:zlib').crc32(pkl) : 0;
  const local = Buffer.alloc(30); local.writeUInt32LE(0x04034b50, 0); local.writeUInt16LE(20, 4);
  local.writeUInt32LE(crc >>> 0, 14); local.writeUInt32LE(pkl.length, 18); local.writeUInt32LE(pkl.length, 22);
  local.writeUInt16LE(name.length, 26);
  const central = Buffer.alloc(46); central.writeUInt32LE(0x02014b50, 0); central.writeUInt16LE(20, 4); central.writeUInt16LE(20, 6);
  central.writeUInt32LE(crc >>> 0, 16); central.writeUInt32LE(pkl.length, 20); central.writeUInt32LE(pkl.length, 24);
  central.writeUInt16LE(name.length, 28);
  const offset = 30 + name.length + pkl.length;
  const end = Buffer.alloc(22); end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(1, 8); end.writeUInt16LE(1, 10);
  end.writeUInt32LE(46 + name.length, 12); end.writeUInt32LE(offset, 16);
  return Buffer.concat([local, name, pkl, central, name, end]);
}

test('a checkpoint that asks for code is refused and nothing is lost', async () => {
  const pkl = Buffer.from('\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03.', 'latin1');
  await page.setInputFiles('[data-testid="file-input"]', { name: 'evil.pt', mimeType: 'application/octet-stream', buffer: storedZip('evil', pkl) });
  const error = page.locator('[data-testid="error"]').filter({ hasText: 'evil.pt' });
  await error.waitFor({ timeout: 20000 });
  assert.match(await error.textContent(), /os\.system/);
  assert.match(await page.textContent('[data-testid="model-card"]'), /pizza_marinara\.pt/);
  assert.equal(await page.locator('[data-testid="scene-list"] li:not(.loading)').count(), 2);
  assert.deepEqual(pageErrors, []);
});

test('a 370-byte copy bomb is read in a worker and refused by name while the page answers', async () => {
  const workers = [];
  page.on('worker', (w) => workers.push(w.url()));
  // 64 DUP + TUPLE2 pairs: 2^64 values to an unpickler that copies.
  const pkl = Buffer.concat([Buffer.from('\x80\x02]', 'latin1'), Buffer.from('2\x86'.repeat(64), 'latin1'), Buffer.from('.')]);
  await page.evaluate(() => {
    window.gap = 0; window.last = performance.now();
    window.ticker = setInterval(() => { const now = performance.now(); window.gap = Math.max(window.gap, now - window.last); window.last = now; }, 20);
  });
  await page.setInputFiles('[data-testid="file-input"]', { name: 'bomb.pt', mimeType: 'application/octet-stream', buffer: storedZip('bomb', pkl) });
  const error = page.locator('[data-testid="error"]').filter({ hasText: 'bomb.pt' });
  await error.waitFor({ timeout: 20000 });
  assert.match(await error.textContent(), /MiB of values/);
  const gap = await page.evaluate(() => { clearInterval(window.ticker); return window.gap; });
  assert.ok(gap < 1000, `the page paused for ${gap} ms`);
  assert.ok(workers.length >= 1, 'a worker read the checkpoint');
  assert.match(await page.textContent('[data-testid="model-card"]'), /pizza_marinara\.pt/);
  assert.equal(await page.locator('[data-testid="scene-list"] li:not(.loading)').count(), 2);
  assert.deepEqual(pageErrors, []);
});

test('the attention U-Net predicts with the CLI scores', { timeout: 400000 }, async () => {
  const model = path.join(SHARED, 'reference', 'attention', 'unet_attention_4lvl.pt');
  await dropFiles(page, 'drop-zone', [{ name: 'unet_attention_4lvl.pt', bytes: fs.readFileSync(model) }]);
  await page.waitForFunction(() => document.querySelector('[data-testid="model-card"]')?.textContent.includes('unet_attention_4lvl.pt'), null, { timeout: 30000 });
  assert.match(await page.textContent('[data-testid="model-card"]'), /attention U-Net, 4 levels.*16, 32, 32, 32.*200363/s);
  const want = cliScores(model);
  await page.waitForFunction((c) => Number(document.querySelector('[data-testid="score-combined"]')?.textContent) === c, want.combined, { timeout: 360000 });
  const got = await pageScores();
  for (const k of ['SIC', 'SOD', 'FLOE', 'combined']) assert.equal(got[k], want[k], k);
  assert.deepEqual(pageErrors, []);
});
