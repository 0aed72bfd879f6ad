// Presentation mode: the bundled story presents with the keyboard; a story of three views is
// captured, saved, loaded again after a reload and replayed, and each replayed step draws the
// picture it was captured from; a bad story file is refused by name and the story stays.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { serve, launch, dropFiles, OUTPUT } = require('./harness');

const ROOT = path.resolve(__dirname, '..');
const BUNDLED = JSON.parse(fs.readFileSync(path.join(ROOT, 'assets', 'demo', 'story.json'), 'utf8'));
let server; let browser; let page; let base;
const pageErrors = [];

const $ = (id) => `[data-testid="${id}"]`;
const text = (id) => page.textContent($(id));
const steps = () => page.locator($('story-step'));

/** Loads the page and waits for the demo scene, the demo model's prediction (on the CPU:
 * SwiftShader's WebGPU is slow) and the bundled story. */
async function open(url) {
  await page.goto(url);
  await page.locator('[data-testid="scene-list"] li:not(.loading)').first().waitFor({ timeout: 30000 });
  await page.waitForFunction(() => document.querySelector('[data-testid="backend"]').textContent === 'webgpu', null, { timeout: 30000 });
  await page.selectOption('select:has(option[value="cpu"])', 'cpu');
  await page.locator($('score-combined')).waitFor({ timeout: 120000 });
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid="story-step"]').length === n, BUNDLED.steps.length, { timeout: 30000 });
  // No run left in the background: a finished run may change the layer shown.
  await page.waitForFunction(() => document.querySelector('[data-testid="progress"]').classList.contains('idle'), null, { timeout: 200000 });
}

before(async () => {
  server = await serve();
  browser = await launch();
  page = await browser.newPage({ viewport: { width: 1600, height: 1000 }, acceptDownloads: true });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  base = `http://127.0.0.1:${server.address().port}/`;
  await open(base);
  fs.mkdirSync(OUTPUT, { recursive: true });
});

after(async () => {
  await browser?.close();
  server?.close();
});

const setOpacity = (v) => page.$eval($('opacity'), (el, v) => { el.value = String(v); el.dispatchEvent(new Event('input', { bubbles: true })); }, v);
const presenting = () => page.$eval('.app', (a) => a.classList.contains('presenting'));
const stackStyle = () => page.$eval('.stack', (s) => s.getAttribute('style'));
const visibleErrors = () => page.$$eval($('error'), (els) => els.map((e) => e.textContent.trim()).filter((t) => t && t !== '×'));

/** Waits until the page has drawn what the last input asked for. */
const settle = () => page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(r, 150)))));

/** A screenshot of the picture, without pointer, focus ring or inspector. */
async function shot() {
  await page.mouse.move(1, 1);
  await page.evaluate(() => document.activeElement?.blur());
  await settle();
  return page.locator($('viewport')).screenshot();
}

/** Mean absolute difference per RGB channel of two PNGs (0-255), decoded by the browser. */
function difference(a, b) {
  return page.evaluate(async ([a, b]) => {
    const pixels = async (b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const bmp = await createImageBitmap(new Blob([bytes], { type: 'image/png' }));
      const c = new OffscreenCanvas(bmp.width, bmp.height);
      const ctx = c.getContext('2d');
      ctx.drawImage(bmp, 0, 0);
      return { w: bmp.width, h: bmp.height, d: ctx.getImageData(0, 0, bmp.width, bmp.height).data };
    };
    const [p, q] = [await pixels(a), await pixels(b)];
    if (p.w !== q.w || p.h !== q.h) return 255;
    let sum = 0;
    for (let i = 0; i < p.d.length; i += 4) {
      sum += Math.abs(p.d[i] - q.d[i]) + Math.abs(p.d[i + 1] - q.d[i + 1]) + Math.abs(p.d[i + 2] - q.d[i + 2]);
    }
    return sum / (p.w * p.h * 3);
  }, [a.toString('base64'), b.toString('base64')]);
}

test('the bundled story presents its steps with the keyboard', { timeout: 60000 }, async () => {
  assert.equal(await steps().count(), BUNDLED.steps.length);
  const n = BUNDLED.steps.length;
  const expect = async (i) => {
    assert.equal(await text('story-counter'), `${i + 1} / ${n}`);
    assert.equal(await text('story-caption-shown'), BUNDLED.steps[i].caption);
    assert.equal(await page.inputValue($('layer-select')), BUNDLED.steps[i].layer);
    assert.equal(await text('zoom'), `${Math.round(BUNDLED.steps[i].zoom * 100)} %`);
    assert.equal(await page.$eval('.side', (s) => s.dataset.panel), BUNDLED.steps[i].panel);
  };
  await page.click($('story-present'));
  await page.locator($('story-counter')).waitFor();
  assert.ok(await presenting());
  // Every control is hidden; the picture, the legend and the caption are left.
  for (const sel of ['header', 'aside', $('story-capture'), $('fit'), $('zoom')]) {
    assert.equal(await page.locator(sel).isVisible(), false, `${sel} hidden`);
  }
  assert.ok(await page.locator($('viewport')).isVisible());
  assert.ok(await page.locator($('story-caption-shown')).isVisible());
  const captionSize = await page.$eval($('story-caption-shown'), (e) => parseFloat(getComputedStyle(e).fontSize));
  assert.ok(captionSize >= 2.2 * 16, `caption ${captionSize}px`);
  await expect(0);
  await page.keyboard.press('ArrowRight');
  await expect(1);
  assert.match(await page.textContent('.legend'), /Ice chart/);
  const legendSize = await page.$eval('.legend li', (e) => parseFloat(getComputedStyle(e).fontSize));
  assert.ok(legendSize >= 1.4 * 16, `legend ${legendSize}px`);
  // The arrow keys step the story, even with the picture focused: the viewer does not pan.
  // (Steps 2 and 3 share zoom and centre.)
  const before = await stackStyle();
  await page.focus($('viewport'));
  await page.keyboard.press(' ');
  await expect(2);
  assert.equal(await stackStyle(), before);
  await page.keyboard.press('PageDown');
  await expect(3);
  assert.ok(await page.locator($('swipe-handle')).isVisible(), 'the swipe divider of step 4');
  await page.keyboard.press('End');
  await expect(n - 1);
  await page.keyboard.press('ArrowRight');
  await expect(n - 1);
  await page.keyboard.press('ArrowLeft');
  await expect(n - 2);
  await page.keyboard.press('Home');
  await expect(0);
  await page.keyboard.press('ArrowLeft');
  await expect(0);
  // h leaves only the picture, and brings the caption back.
  await page.keyboard.press('h');
  assert.equal(await page.locator($('story-caption-shown')).isVisible(), false);
  await page.keyboard.press('h');
  assert.ok(await page.locator($('story-caption-shown')).isVisible());
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowRight');
  await expect(2);
  await page.screenshot({ path: path.join(OUTPUT, 'story-presenting.png') });
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => !document.querySelector('.app').classList.contains('presenting'));
  for (const sel of ['header', 'aside', $('story-capture'), $('fit')]) {
    assert.ok(await page.locator(sel).isVisible(), `${sel} visible again`);
  }
  assert.equal(await page.locator($('story-counter')).count(), 0);
  // Outside presentation mode the arrow keys pan the picture again.
  await page.focus($('viewport'));
  const still = await stackStyle();
  await page.keyboard.press('ArrowRight');
  assert.notEqual(await stackStyle(), still);
  assert.deepEqual(await visibleErrors(), []);
  assert.deepEqual(pageErrors, []);
});

test('a bad story file is refused by name and the story stays', async () => {
  const n = await steps().count();
  const first = await page.inputValue(`${$('story-caption')} >> nth=0`);
  await page.setInputFiles($('story-load'), { name: 'broken-story.json', mimeType: 'application/json', buffer: Buffer.from('{"version": 1, "steps": [') });
  const error = page.locator($('error')).filter({ hasText: 'broken-story.json' });
  await error.waitFor({ timeout: 5000 });
  assert.match(await error.textContent(), /not a valid icelens story/);
  const bad = JSON.parse(JSON.stringify(BUNDLED));
  bad.steps[1].opacity = 300;
  await dropFiles(page, 'drop-zone', [{ name: 'loud.json', bytes: Buffer.from(JSON.stringify(bad)) }]);
  const error2 = page.locator($('error')).filter({ hasText: 'loud.json' });
  await error2.waitFor({ timeout: 5000 });
  assert.match(await error2.textContent(), /step 2: opacity 300/);
  assert.equal(await steps().count(), n);
  assert.equal(await page.inputValue(`${$('story-caption')} >> nth=0`), first);
  for (const b of await page.locator('.error .dismiss').all()) await b.click();
  assert.deepEqual(pageErrors, []);
});

test('three captured views are saved, loaded after a reload and replayed as captured', { timeout: 400000 }, async (t) => {
  // A fresh story: remove the bundled steps.
  while (await steps().count() > 0) await page.locator($('story-remove')).first().click();
  const viewport = page.locator($('viewport'));
  const box = await viewport.boundingBox();
  const captured = [];
  const capture = async (caption) => {
    const image = await shot();
    const state = { layer: await page.inputValue($('layer-select')), zoom: await text('zoom'), stack: await stackStyle() };
    await page.click($('story-capture'));
    await page.locator($('story-caption')).last().fill(caption);
    captured.push({ caption, image, ...state });
    fs.writeFileSync(path.join(OUTPUT, `story-captured-${captured.length}.png`), image);
  };

  // 1: the predicted SIC, zoomed in with the keyboard and panned left.
  await page.selectOption($('layer-select'), 'pred-SIC');
  await page.selectOption($('sar-select'), 'HH');
  await setOpacity(65);
  await page.selectOption($('story-panel'), 'legend');
  await page.click($('fit'));
  await viewport.focus();
  await page.keyboard.press('+');
  await page.keyboard.press('+');
  await page.keyboard.press('ArrowLeft');
  await capture('Predicted concentration, west side');

  // 2: the SOD error at 40 % opacity against the prediction with the swipe divider.
  await page.selectOption($('layer-select'), 'error-SOD');
  await setOpacity(40);
  await page.click($('fit'));
  await page.click('.view-tools button[title^="Zoom in"]');
  await page.click($('swipe'));
  await capture('Stage of development, errors against the prediction');

  // 3: the SOD chart on HV, far in, dragged to another place, with the conditions panel.
  await page.click($('swipe'));
  await page.selectOption($('layer-select'), 'chart-SOD');
  await page.selectOption($('sar-select'), 'HV');
  await setOpacity(85);
  await viewport.focus();
  for (let i = 0; i < 4; i++) await page.keyboard.press('+');
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2 + 140, box.y + box.height / 2 - 90, { steps: 5 });
  await page.mouse.up();
  await page.selectOption($('story-panel'), 'conditions');
  await capture('Ice chart, stage of development, up close');

  assert.equal(await steps().count(), 3);
  // The three views differ, so the comparisons below have teeth.
  for (const [a, b] of [[0, 1], [1, 2], [0, 2]]) {
    const d = await difference(captured[a].image, captured[b].image);
    t.diagnostic(`captured steps ${a + 1} and ${b + 1} differ by ${d.toFixed(2)} per channel`);
    assert.ok(d > 8, `steps ${a + 1} and ${b + 1} differ by ${d.toFixed(2)}`);
  }

  const [download] = await Promise.all([page.waitForEvent('download'), page.click($('story-save'))]);
  assert.equal(download.suggestedFilename(), 'icelens-story.json');
  const saved = path.join(OUTPUT, 'icelens-story.json');
  await download.saveAs(saved);
  const doc = JSON.parse(fs.readFileSync(saved, 'utf8'));
  assert.equal(doc.version, 1);
  assert.deepEqual(doc.steps.map((s) => s.caption), captured.map((c) => c.caption));
  assert.deepEqual(doc.steps.map((s) => s.layer), ['pred-SIC', 'error-SOD', 'chart-SOD']);
  assert.deepEqual(doc.steps.map((s) => s.opacity), [65, 40, 85]);
  assert.deepEqual(doc.steps.map((s) => s.swipe), [null, 0.5, null]);
  assert.deepEqual(doc.steps.map((s) => s.sar), ['HH', 'HH', 'HV']);
  assert.deepEqual(doc.steps.map((s) => s.panel), ['legend', 'legend', 'conditions']);
  assert.ok(doc.steps.every((s) => s.scene === '20210315T101500_dmi' && s.model === 'icelens-demo.bpk'));

  // A fresh page (the bundled story again, the view reset), then the saved story.
  await open(`${base}?again`);
  await page.selectOption($('layer-select'), 'none');
  await page.click($('fit'));
  await page.setInputFiles($('story-load'), saved);
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="story-step"]').length === 3);
  for (let i = 0; i < 3; i++) {
    assert.equal(await page.inputValue(`${$('story-caption')} >> nth=${i}`), captured[i].caption);
  }

  // Replayed by a click on each step, in an order unlike the capture's.
  for (const i of [2, 0, 1]) {
    await steps().nth(i).click();
    const image = await shot();
    fs.writeFileSync(path.join(OUTPUT, `story-replayed-${i + 1}.png`), image);
    assert.equal(await page.inputValue($('layer-select')), captured[i].layer);
    assert.equal(await text('zoom'), captured[i].zoom);
    assert.equal(await stackStyle(), captured[i].stack, `step ${i + 1}: same position`);
    const d = await difference(image, captured[i].image);
    t.diagnostic(`replayed step ${i + 1} differs from its capture by ${d.toFixed(3)} per channel`);
    assert.ok(d < 1, `step ${i + 1} differs from its capture by ${d.toFixed(3)}`);
  }

  // And presented with the keyboard: the state of each step (the picture is larger there).
  await page.click($('story-present'));
  await page.locator($('story-counter')).waitFor();
  for (let i = 0; i < 3; i++) {
    if (i > 0) await page.keyboard.press('ArrowRight');
    assert.equal(await text('story-counter'), `${i + 1} / 3`);
    assert.equal(await text('story-caption-shown'), captured[i].caption);
    assert.equal(await page.inputValue($('layer-select')), captured[i].layer);
    assert.equal(await text('zoom'), captured[i].zoom);
    assert.equal(await page.locator($('swipe-handle')).count(), i === 1 ? 1 : 0);
  }
  assert.ok(await page.locator('.side .conditions').isVisible(), 'step 3 shows the conditions panel');
  await page.screenshot({ path: path.join(OUTPUT, 'story-presenting-3.png') });
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => !document.querySelector('.app').classList.contains('presenting'));
  // Back in the normal layout, the last step still looks as captured.
  const d = await difference(await shot(), captured[2].image);
  assert.ok(d < 1, `after presenting, step 3 differs by ${d.toFixed(3)}`);
  assert.deepEqual(await visibleErrors(), []);
  assert.deepEqual(pageErrors, []);
});

test('a story dropped on the page replaces the story; a missing scene is named', async () => {
  const story = JSON.parse(JSON.stringify(BUNDLED));
  story.steps = story.steps.slice(0, 2);
  story.steps[1].scene = '20991231T000000_cis';
  await dropFiles(page, 'drop-zone', [{ name: 'two.json', bytes: Buffer.from(JSON.stringify(story)) }]);
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="story-step"]').length === 2);
  await steps().nth(1).click();
  const error = page.locator($('error')).filter({ hasText: '20991231T000000_cis' });
  await error.waitFor({ timeout: 5000 });
  assert.match(await error.textContent(), /story step 2: scene 20991231T000000_cis is not loaded/);
  assert.equal(await page.inputValue($('layer-select')), story.steps[1].layer);
  assert.deepEqual(pageErrors, []);
});
