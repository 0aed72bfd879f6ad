// icelens works offline once loaded: this service worker keeps the page, its wasm, styles and
// bundled assets in a cache. Requests go to the network first, so a new build is picked up at
// once; when the network is gone, the cached copy answers. Nothing outside this origin is
// ever fetched.
const CACHE = 'icelens-v1';
const BUNDLED = ['./', './index.html', './assets/demo/20210315T101500_dmi_prep.nc', './models/icelens-demo.bpk', './assets/demo/story.json',
  // The decoding worker: named by Trunk without a hash, as a worker's script must be.
  './icelens-worker_loader.js', './icelens-worker.js', './icelens-worker_bg.wasm'];

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // The build names its script, wasm and style with content hashes: read them off the page.
    const html = await (await fetch('./index.html', { cache: 'no-cache' })).text();
    const built = [...html.matchAll(/["'](?:\.?\/)?([\w.-]+\.(?:js|wasm|css))["']/g)].map((m) => `./${m[1]}`);
    await cache.addAll([...new Set([...BUNDLED, ...built])]);
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) if (key !== CACHE) await caches.delete(key);
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET' || new URL(request.url).origin !== self.location.origin) return;
  event.respondWith((async () => {
    try {
      const response = await fetch(request);
      if (response.ok) (await caches.open(CACHE)).put(request, response.clone());
      return response;
    } catch (error) {
      const cached = await caches.match(request, { ignoreSearch: true });
      if (cached) return cached;
      throw error;
    }
  })());
});
