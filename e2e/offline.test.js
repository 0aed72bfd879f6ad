// The page never reaches beyond 127.0.0.1, and once loaded it works with the network off.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { serve, launch, dropFiles, SHARED } = require('./harness');

let server; let browser; let context; let page;
const requests = [];

before(async () => {
  server = await serve();
  browser = await launch();
  context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  // Every request of the page and of its service worker.
  context.on('request', (r) => requests.push(r.url()));
  page = await context.newPage();
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
});

after(async () => {
  await browser?.close();
  server?.close();
});

test('a full run sends no request outside 127.0.0.1', { timeout: 120000 }, async () => {
  await page.locator('[data-testid="scene-list"] li:not(.loading)').first().waitFor({ timeout: 30000 });
  await page.waitForFunction(() => document.querySelector('[data-testid="backend"]').textContent === 'webgpu', null, { timeout: 30000 });
  await page.selectOption('select:has(option[value="cpu"])', 'cpu');
  await dropFiles(page, 'drop-zone', ['fixtures/20190412T103015_dmi_prep.nc', 'reference/pizza_marinara.pt']
    .map((p) => ({ name: path.basename(p), bytes: fs.readFileSync(path.join(SHARED, p)) })));
  await page.locator('[data-testid="score-combined"]').waitFor({ timeout: 90000 });
  await page.locator('[data-testid="condition-row"]').first().waitFor({ timeout: 30000 });
  const outside = requests.filter((u) => !/^(data|blob):/.test(u) && new URL(u).hostname !== '127.0.0.1');
  assert.ok(requests.length >= 4, `${requests.length} requests seen`);
  assert.deepEqual(outside, []);
});

test('after the first load the page works offline', { timeout: 60000 }, async () => {
  await page.evaluate(() => navigator.serviceWorker.ready.then(() => true));
  await context.setOffline(true);
  await page.reload();
  await page.locator('[data-testid="scene-list"] li:not(.loading)').first().waitFor({ timeout: 30000 });
  assert.match(await page.textContent('[data-testid="scene-list"]'), /20210315T101500_dmi/);
  const width = await page.$eval('canvas.sar', (c) => c.width);
  assert.equal(width, 384);
  // The bundled story is there too, ready to present.
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="story-step"]').length >= 6, null, { timeout: 30000 });
  await page.click('[data-testid="story-present"]');
  await page.keyboard.press('ArrowRight');
  assert.match(await page.textContent('[data-testid="story-counter"]'), /^2 \/ \d+$/);
  await page.keyboard.press('Escape');
  // Files still open offline: they never leave the machine.
  await dropFiles(page, 'drop-zone', [{ name: '20200117T211533_cis_prep.nc', bytes: fs.readFileSync(path.join(SHARED, 'fixtures', '20200117T211533_cis_prep.nc')) }]);
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="scene-list"] li:not(.loading)').length === 2);
  await context.setOffline(false);
});
