// Shared set-up of the browser tests: a static server for dist/ on 127.0.0.1 and a headless
// Chromium with WebGPU (SwiftShader) enabled.
const http = require('node:http');
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');

const ROOT = path.resolve(__dirname, '..');
const DIST = path.join(ROOT, 'dist');
const SHARED = process.env.ICELENS_SHARED || path.resolve(ROOT, '..', 'shared');
const OUTPUT = path.join(__dirname, 'output');
// The one target folder every build of icelens shares (README.md), unless one is set.
const TARGET = process.env.CARGO_TARGET_DIR || path.join(require('node:os').homedir(), '.cache', 'icelens-target');

const TYPES = {
  '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm',
  '.css': 'text/css', '.json': 'application/json', '.png': 'image/png',
};

/** Serves a built page (default <repo>/dist) on 127.0.0.1 at a free port. */
function serve(dist = DIST) {
  if (!fs.existsSync(path.join(dist, 'index.html'))) {
    throw new Error(`no ${dist}/index.html: run 'trunk build --release' first`);
  }
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    let file = path.normalize(path.join(dist, url));
    if (!file.startsWith(dist)) { res.writeHead(403); return res.end(); }
    if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
    if (!fs.existsSync(file)) { res.writeHead(404); return res.end(); }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function chromiumPath() {
  for (const p of [process.env.CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser']) {
    if (p && fs.existsSync(p)) return p;
  }
  throw new Error('Chromium not found: run scripts/setup.sh test');
}

/**
 * A headless Chromium. `wasmMaxPages` caps every wasm memory (64 KiB pages), as a browser
 * short of memory would: a page and its workers then meet allocation failures for real.
 */
async function launch({ wasmMaxPages } = {}) {
  // --expose-gc: a test that times the page's thread collects its own garbage first.
  const jsFlags = ['--expose-gc', ...(wasmMaxPages ? [`--wasm-max-mem-pages=${wasmMaxPages}`] : [])];
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      `--js-flags=${jsFlags.join(' ')}`],
  });
}

/** Drops files (name + bytes) on the element with the given test id, as a user would. */
async function dropFiles(page, testid, files) {
  const payload = files.map((f) => ({ name: f.name, b64: Buffer.from(f.bytes).toString('base64') }));
  const dt = await page.evaluateHandle((list) => {
    const d = new DataTransfer();
    for (const f of list) {
      const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
      d.items.add(new File([bytes], f.name, { type: 'application/octet-stream' }));
    }
    return d;
  }, payload);
  for (const ev of ['dragenter', 'dragover', 'drop']) {
    await page.dispatchEvent(`[data-testid="${testid}"]`, ev, { dataTransfer: dt });
  }
}

let built = false;

/**
 * Runs the `icelens` command line and returns its stdout. The binary is the one `cargo test
 * --workspace` builds (for the command-line tests), with its feature set: `cargo run --bin
 * icelens` or `cargo build` select other packages or leave out dev-dependencies, unify other
 * features and rebuild burn once more (about 20 minutes on 2 cores).
 */
function icelens(args, opts = {}) {
  return execFileSync(binary(), args,
    { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 28, ...opts });
}

/** Runs the command line to its end: its exit status, stdout and stderr (where it reports). */
function icelensRun(args) {
  return spawnSync(binary(), args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 28 });
}

/** The `icelens` binary, built once per test file (see `icelens`). */
function binary() {
  if (!built) {
    execFileSync('cargo', ['test', '--quiet', '--workspace', '--no-run'],
      { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, CARGO_TARGET_DIR: TARGET } });
    built = true;
  }
  return path.join(TARGET, 'debug', 'icelens');
}

/**
 * Opens the page served by `server` in a new tab (`options` as for `browser.newPage`), records
 * its uncaught errors in `errors`, and waits until the first scene is listed. `init`, a script
 * run before the page's own, can make the browser look like another machine.
 */
async function openPage(browser, server, errors, options = { viewport: { width: 1600, height: 1000 }, acceptDownloads: true }, init = null) {
  const page = await browser.newPage(options);
  if (init) await page.addInitScript(init);
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
  await page.locator('[data-testid="scene-list"] li:not(.loading)').first().waitFor({ timeout: 30000 });
  return page;
}

module.exports = { serve, launch, openPage, dropFiles, icelens, icelensRun, SHARED, OUTPUT };
