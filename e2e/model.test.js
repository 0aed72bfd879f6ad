// A dropped checkpoint runs over a dropped scene on WebGPU and on the CPU, and the scores the
// page shows are the ones `icelens evaluate` prints for the same files.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { serve, launch, openPage, dropFiles, icelens, SHARED, OUTPUT } = require('./harness');

const SCENE = '20190412T103015_dmi_prep.nc';
const MODEL = 'pizza_marinara.pt';
let server; let browser; let page; const pageErrors = [];

before(async () => {
  server = await serve();
  browser = await launch();
  page = await openPage(browser, server, pageErrors, { viewport: { width: 1400, height: 900 } });
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
  // The confidence ramp over the scene: opaque where the SAR has data, many shades between
  // the ramp's ends (plasma: blue high, green low at the bottom; green high, blue low at top).
  const conf = await page.evaluate(() => {
    const c = document.querySelector('canvas.layer');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let opaque = 0; let sure = 0; const shades = new Set();
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] !== 255) continue;
      opaque++; shades.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
      if (d[i + 1] > 200 && d[i + 2] < 80) sure++;
    }
    return { opaque: opaque / (d.length / 4), shades: shades.size, sure: sure / Math.max(opaque, 1) };
  });
  assert.ok(conf.opaque > 0.5, JSON.stringify(conf));
  assert.ok(conf.shades > 20, JSON.stringify(conf));
  assert.ok(conf.sure > 0.01 && conf.sure < 0.99, `some pixels sure, not all: ${JSON.stringify(conf)}`);
  // The error per 64 px tile: opaque cells of one colour each, on the green-yellow-red ramp,
  // and not all alike.
  await page.selectOption('[data-testid="layer-select"]', 'tiles');
  assert.match(await page.textContent('.legend'), /Error per 64 px tile/);
  const tiles = await page.evaluate(() => {
    const c = document.querySelector('canvas.layer');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const at = (x, y) => { const i = (y * c.width + x) * 4; return [d[i], d[i + 1], d[i + 2], d[i + 3]]; };
    let cells = 0; let mixed = 0; let offRamp = 0; const colours = new Set();
    for (let y0 = 0; y0 + 64 <= c.height; y0 += 64) {
      for (let x0 = 0; x0 + 64 <= c.width; x0 += 64) {
        const p = at(x0, y0);
        if (p[3] === 0) continue;
        cells++;
        colours.add(p.slice(0, 3).join());
        for (const [x, y] of [[x0 + 63, y0], [x0, y0 + 63], [x0 + 63, y0 + 63], [x0 + 31, y0 + 17]]) {
          if (at(x, y).join() !== p.join()) mixed++;
        }
        // Green (40,200,120) to yellow (255,230,0): blue falls as red rises; then red stays 255.
        const onRamp = p[3] === 255 && (p[2] > 0
          ? Math.abs(p[0] - (40 + 215 * (1 - p[2] / 120))) <= 3 && Math.abs(p[1] - (200 + 30 * (1 - p[2] / 120))) <= 3
          : p[0] === 255);
        if (!onRamp) offRamp++;
      }
    }
    return { cells, mixed, offRamp, colours: colours.size };
  });
  assert.ok(tiles.cells >= 9 && tiles.mixed === 0 && tiles.offRamp === 0 && tiles.colours > 2, JSON.stringify(tiles));
});

/** A uint8 .npy written by icelens: its shape and values. */
function readNpyU8(file) {
  const b = fs.readFileSync(file);
  const major = b[6];
  const len = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = b.subarray(start, start + len).toString('latin1');
  assert.match(header, /'descr': '\|u1'/);
  const shape = header.match(/'shape': \((\d+), (\d+)\)/).slice(1).map(Number);
  return { shape, data: b.subarray(start + len) };
}

/** The heat map colour of round(255 ψ), as icelens_core::render::attention_rgba computes it. */
function inferno(p) {
  const stops = [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]];
  const t = (p / 255) * 4;
  const i = Math.min(Math.floor(t), 3);
  const f = t - i;
  return [0, 1, 2].map((k) => Math.round(stops[i][k] * (1 - f) + stops[i + 1][k] * f));
}

/** ψ of every block at the pixel under the viewport's centre, from the inspector and from `maps`. */
async function inspectCentre(maps) {
  const box = await page.locator('[data-testid="viewport"]').boundingBox();
  await page.mouse.move(box.x + box.width / 2 + 3, box.y + box.height / 2 + 5);
  const text = await page.textContent('[data-testid="inspector"]');
  const [, line, sample] = text.match(/line (\d+), sample (\d+)/).map(Number);
  const shown = (await page.textContent('[data-testid="inspector-attention"]')).match(/[\d.]+/g).map(Number);
  const i = line * maps[0].shape[1] + sample;
  return { shown, want: maps.map((m) => m.data[i] / 255) };
}

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
  assert.match(await page.textContent('[data-testid="model-gates"]'), /4 attention gates .*inner channels 16, 16, 16, 8/);
  const want = cliScores(model);
  await page.waitForFunction((c) => Number(document.querySelector('[data-testid="score-combined"]')?.textContent) === c, want.combined, { timeout: 360000 });
  const got = await pageScores();
  for (const k of ['SIC', 'SOD', 'FLOE', 'combined']) assert.equal(got[k], want[k], k);
  assert.deepEqual(pageErrors, []);
});

test('the attention layer and the inspector show ψ as the CLI computes it, on the CPU and WebGPU', { timeout: 400000 }, async () => {
  const model = path.join(SHARED, 'reference', 'attention', 'unet_attention_4lvl.pt');
  const dir = path.join(OUTPUT, 'attention-maps');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  icelens(['predict', '--model', model, path.join(SHARED, 'fixtures', SCENE), '--upload', path.join(dir, 'upload.nc'), '--attention', dir]);
  const maps = [0, 1, 2, 3].map((k) => readNpyU8(path.join(dir, fs.readdirSync(dir).find((f) => f.endsWith(`_attention_${k}.npy`)))));
  // The run of the previous test is on the CPU.
  assert.match(await page.textContent('.scores'), /on cpu/);
  const labels = await page.$$eval('[data-testid="layer-select"] option', (o) => o.map((x) => x.value));
  assert.deepEqual(labels.filter((v) => v.startsWith('attention-')), ['attention-0', 'attention-1', 'attention-2', 'attention-3']);
  for (const k of [3, 0]) {
    await page.selectOption('[data-testid="layer-select"]', `attention-${k}`);
    assert.match(await page.textContent('.legend'), new RegExp(`Attention ψ · block ${k}`));
    const [h, w] = maps[k].shape;
    const got = await page.evaluate(() => {
      const c = document.querySelector('canvas.layer');
      return { w: c.width, h: c.height, d: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data) };
    });
    assert.deepEqual([got.h, got.w], [h, w]);
    let compared = 0; let worst = 0; const seen = new Set();
    for (let i = 0; i < h * w; i += 7) {
      if (got.d[i * 4 + 3] !== 255) continue;
      const want = inferno(maps[k].data[i]);
      for (let ch = 0; ch < 3; ch++) worst = Math.max(worst, Math.abs(got.d[i * 4 + ch] - want[ch]));
      seen.add(maps[k].data[i]);
      compared++;
    }
    assert.ok(compared > (h * w) / 7 / 2, `only ${compared} pixels drawn`);
    assert.ok(worst <= 1, `block ${k}: a colour channel off by ${worst}`);
    assert.ok(seen.size > 20, `block ${k}: only ${seen.size} levels of ψ`);
  }
  const cpu = await inspectCentre(maps);
  assert.equal(cpu.shown.length, 4);
  cpu.shown.forEach((v, k) => assert.equal(v.toFixed(2), cpu.want[k].toFixed(2), `block ${k}`));

  await page.selectOption('select:has(option[value="webgpu"])', 'webgpu');
  await page.waitForFunction(() => /on webgpu/.test(document.querySelector('.scores')?.textContent || ''), null, { timeout: 360000 });
  const want = cliScores(model);
  const scores = await pageScores();
  for (const k of ['SIC', 'SOD', 'FLOE', 'combined']) assert.equal(scores[k], want[k], `${k} on WebGPU`);
  const gpu = await inspectCentre(maps);
  gpu.shown.forEach((v, k) => assert.ok(Math.abs(v - gpu.want[k]) <= 0.011, `block ${k}: ${v} vs ${gpu.want[k]}`));
  fs.mkdirSync(OUTPUT, { recursive: true });
  await page.screenshot({ path: path.join(OUTPUT, 'attention-layer.png') });
  assert.deepEqual(pageErrors, []);
});

test('a plain and an attention U-Net side by side: the conditions table and the versus layer', { timeout: 400000 }, async () => {
  const attention = path.join(SHARED, 'reference', 'attention', 'unet_attention_4lvl.pt');
  const scene = SCENE.replace('_prep.nc', '');
  const row = page.locator(`[data-testid="condition-row"][data-dimension="scene"][data-group="${scene}"]`);
  const columns = async () => (await page.$$eval('.condition-table thead th.model', (t) => t.map((x) => x.title)));
  // Every loaded labelled scene is run with every model in the background; wait for both.
  await page.waitForFunction((s) => {
    const r = document.querySelector(`[data-testid="condition-row"][data-dimension="scene"][data-group="${s}"]`);
    const names = [...document.querySelectorAll('.condition-table thead th.model')].map((x) => x.title);
    return r && names.includes('pizza_marinara.pt') && names.includes('unet_attention_4lvl.pt')
      && r.querySelectorAll('[data-model-score]').length === names.length;
  }, scene, { timeout: 360000 });
  await page.selectOption('[data-testid="rank-select"]', 'combined');
  const names = await columns();
  const scores = await row.locator('td.num[data-model-score]').evaluateAll((c) => c.map((x) => Number(x.dataset.modelScore)));
  assert.equal(scores[names.indexOf('pizza_marinara.pt')], cliScores().combined);
  assert.equal(scores[names.indexOf('unet_attention_4lvl.pt')], cliScores(attention).combined);

  // The attention model shown, the demo model (the first loaded) the other: they disagree both ways.
  await page.locator('[data-testid="model-list"] li').filter({ hasText: 'unet_attention_4lvl.pt' }).click();
  await page.selectOption('[data-testid="layer-select"]', 'vs-SOD');
  assert.match(await page.textContent('.legend'), /both wrong/);
  const px = await page.evaluate(() => {
    const c = document.querySelector('canvas.layer');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const n = { green: 0, red: 0 };
    for (let i = 0; i < d.length; i += 4) {
      if (d[i] === 40 && d[i + 1] === 200 && d[i + 3] === 235) n.green++;
      if (d[i] === 235 && d[i + 1] === 60 && d[i + 3] === 235) n.red++;
    }
    return n;
  });
  assert.ok(px.green > 100 && px.red > 100, JSON.stringify(px));
  assert.deepEqual(pageErrors, []);
});
