// A dropped scene's SAR picture shows before the whole scene is in: its big arrays are shared
// out over decoding workers, and the one that decodes HH and HV draws the picture first. The
// picture shown ahead must be the very picture the page draws from the scene once it is in.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { serve, launch, openPage, dropFiles, SHARED } = require('./harness');

// netCDF-4 written by the real library; three workers share out its seven big arrays.
const SCENE = '20200117T211533_cis_prep.nc';
const THREADS = 3;
let server; let browser; let page; const pageErrors = [];

before(async () => {
  server = await serve();
  browser = await launch();
  page = await openPage(browser, server, pageErrors, { viewport: { width: 1400, height: 900 } },
    `Object.defineProperty(Navigator.prototype, 'hardwareConcurrency', { get: () => ${THREADS} });`);
});

after(async () => {
  await browser?.close();
  server?.close();
});

/** The pixels of a canvas, as an array of bytes (empty for a 0 x 0 canvas). */
const pixels = (selector) => page.evaluate((s) => {
  const c = document.querySelector(s);
  if (!c.width || !c.height) return { width: c.width, height: c.height, rgba: [] };
  return { width: c.width, height: c.height, rgba: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data) };
}, selector);

test('the SAR picture is drawn by the decoding workers ahead of the scene, and is the scene\'s picture', { timeout: 120000 }, async () => {
  // The demo scene in first: its own decoding workers are not counted below.
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="scene-list"] li:not(.loading)').length === 1
    && !document.querySelector('[data-testid="scene-list"] li.loading'), null, { timeout: 30000 });
  // False colour: drawn from HH and HV both, so both must reach the picture in their places.
  await page.selectOption('[data-testid="sar-select"]', 'FC');
  // The first time the picture shows: what it holds, and whether the scene was in yet.
  await page.evaluate((name) => {
    window.ahead = null;
    const canvas = document.querySelector('[data-testid="picture-ahead"]');
    new MutationObserver(() => {
      if (window.ahead || !canvas.classList.contains('shown')) return;
      const listed = [...document.querySelectorAll('[data-testid="scene-list"] li:not(.loading)')]
        .some((li) => li.textContent.includes(name.slice(0, 15)));
      const { width, height } = canvas;
      const rgba = width && height ? Array.from(canvas.getContext('2d').getImageData(0, 0, width, height).data) : [];
      window.ahead = { width, height, rgba, listed };
    }).observe(canvas, { attributes: true });
  }, SCENE);
  const marks = await page.evaluate(() => performance.getEntriesByName('icelens:worker').length);
  await dropFiles(page, 'drop-zone', [{ name: SCENE, bytes: fs.readFileSync(path.join(SHARED, 'fixtures', SCENE)) }]);
  await page.waitForFunction(() => document.querySelector('[data-testid="scene-list"] li.active')?.textContent.includes('20200117T211533')
    && !document.querySelector('[data-testid="picture-ahead"]').classList.contains('shown'), null, { timeout: 60000 });

  const ahead = await page.evaluate(() => window.ahead);
  assert.ok(ahead, 'the picture was shown ahead');
  assert.equal(ahead.listed, false, 'it showed before the scene was in');
  const workers = await page.evaluate(() => performance.getEntriesByName('icelens:worker').length);
  assert.equal(workers - marks, THREADS, 'one decoding worker a thread');

  // The page's own picture of the scene, drawn anew from its arrays (another view and back).
  await page.selectOption('[data-testid="sar-select"]', 'HH');
  await page.selectOption('[data-testid="sar-select"]', 'FC');
  const sar = await pixels('canvas.sar');
  assert.ok(sar.width > 0 && sar.height > 0);
  assert.deepEqual([ahead.width, ahead.height], [sar.width, sar.height]);
  // HH and HV both vary: a picture of either one alone would differ in its colours.
  assert.ok(new Set(ahead.rgba.filter((_, i) => i % 4 === 0)).size > 50);
  let differ = 0;
  for (let i = 0; i < sar.rgba.length; i++) if (sar.rgba[i] !== ahead.rgba[i]) differ++;
  assert.equal(differ, 0, `${differ} of ${sar.rgba.length} bytes differ`);
  // Once the scene is in, the picture ahead is no longer held.
  assert.deepEqual((await pixels('[data-testid="picture-ahead"]')).rgba, []);
  assert.deepEqual(pageErrors, []);
});
