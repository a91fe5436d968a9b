// Service worker: caches the page shell (HTML, scripts, styles, translations, icons) so the app
// opens fast and installs on a phone's home screen. It never caches /api or /ws: visits, names,
// recordings and ID photos are private and always come from the server.
const CACHE = "vv-shell-v1";
const SHELL = ["/", "/assets/app.css", "/assets/core.js", "/manifest.webmanifest",
  "/icons/icon-192.png", "/i18n/common.en.json", "/i18n/common.es.json"];
const PRIVATE_PREFIXES = ["/api/", "/ws/", "/healthz"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(names.filter((name) => name !== CACHE).map((name) => caches.delete(name))))
      .then(() => self.clients.claim()),
  );
});

function isShell(url) {
  if (url.origin !== self.location.origin) return false;
  if (PRIVATE_PREFIXES.some((prefix) => url.pathname.startsWith(prefix))) return false;
  return true;
}

// Network first (pages change with each release), the cached shell only when offline.
self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (!isShell(url) || url.search) return;
  event.respondWith(
    fetch(request)
      .then((response) => {
        if (response.ok && response.type === "basic") {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(request, copy));
        }
        return response;
      })
      .catch(() => caches.match(request).then((hit) => hit || Response.error())),
  );
});
