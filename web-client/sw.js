/*
 * Service worker of the agent inbox (served as /sw.js with scope /): keeps a copy
 * of the app shell — the page, its modules, styles, icons and manifest — so the
 * inbox opens without the hub (it then shows its offline notice and reconnects by
 * itself), and focuses the inbox on a conversation when one of its notifications
 * is clicked. Network first: the hub serves these files with `no-cache`, and a
 * deploy must show at once; the cache is only the fallback. API calls, media and
 * the WebSocket are never cached.
 */
const CACHE = 'switchboard-shell-v1';
const SHELL = [
  '/',
  '/manifest.webmanifest',
  '/app/design.css',
  '/app/style.css',
  '/app/routing.css',
  '/app/leads.css',
  '/app/bot.css',
  '/app/settings.css',
  '/app/settings-widget.css',
  '/app/settings-widget.js',
  '/app/settings-pipeline.js',
  '/app/leads-page.css',
  '/app/icons.svg',
  '/app/pwa/icon-192.png',
  '/app/accounts-api.js',
  '/app/alerts.css',
  '/app/alerts.js',
  '/app/api.js',
  '/app/automations-api.js',
  '/app/audit.css',
  '/app/audit.js',
  '/app/dashboard.css',
  '/app/dashboard.js',
  '/app/bot-api.js',
  '/app/bot-panel.js',
  '/app/bot-settings.js',
  '/app/broadcast-wizard.js',
  '/app/broadcasts-page.js',
  '/app/broadcasts.css',
  '/app/charts.js',
  '/app/contact.js',
  '/app/contact-tags.js',
  '/app/contacts-data.js',
  '/app/contacts-page.js',
  '/app/contacts.css',
  '/app/conversation-list.js',
  '/app/conversation-view.js',
  '/app/dom.js',
  '/app/format.js',
  '/app/lead-detail.js',
  '/app/lead-panel.js',
  '/app/leads-board.js',
  '/app/leads-data.js',
  '/app/leads-page.js',
  '/app/login.js',
  '/app/main.js',
  '/app/notify.js',
  '/app/offers.js',
  '/app/permissions.js',
  '/app/pwa.js',
  '/app/routing-api.js',
  '/app/routing-panel.js',
  '/app/settings-account.js',
  '/app/settings-agent-edit.js',
  '/app/settings-hours.js',
  '/app/settings-agents.js',
  '/app/settings-automations.css',
  '/app/settings-automations.js',
  '/app/settings-campaigns.js',
  '/app/settings-growth.css',
  '/app/settings-numbers.css',
  '/app/settings-numbers.js',
  '/app/settings-pace.js',
  '/app/settings-jobs.css',
  '/app/settings-jobs.js',
  '/app/settings-links.js',
  '/app/settings-teams.js',
  '/app/segment-builder.js',
  '/app/settings-ui.js',
  '/app/settings.js',
  '/app/socket.js',
  '/app/store.js',
  '/app/tag-manager.js',
  '/app/tasks-page.js',
  '/app/template-picker.js',
  '/app/templates-page.js',
  '/app/templates.css',
  '/app/team.js',
  '/app/toast.js',
  '/app/vendor/qrcode-generator.js',
];

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      // One by one: a file missing from a deploy must not leave the whole shell uncached.
      .then((cache) => Promise.all(SHELL.map((url) => cache.add(url).catch(() => undefined))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

/** Whether a request is part of the shell (never the API, media or sockets). */
function isShell(url, request) {
  if (url.origin !== self.location.origin || request.method !== 'GET') return false;
  if (request.mode === 'navigate') return url.pathname === '/';
  return url.pathname.startsWith('/app/') || url.pathname === '/manifest.webmanifest' || url.pathname === '/favicon.ico';
}

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (!isShell(url, event.request)) return;
  // The page is one document whatever its hash; look it up without the query.
  const key = event.request.mode === 'navigate' ? '/' : url.pathname;
  event.respondWith(
    fetch(event.request)
      .then((res) => {
        if (res.ok) {
          const copy = res.clone();
          caches.open(CACHE).then((cache) => cache.put(key, copy));
        }
        return res;
      })
      .catch(() => caches.match(key).then((hit) => hit || Response.error())),
  );
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const id = event.notification.data && event.notification.data.conversationId;
  const target = id ? `/#/c/${encodeURIComponent(id)}` : '/';
  event.waitUntil(
    self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((wins) => {
      const win = wins.find((w) => new URL(w.url).origin === self.location.origin);
      if (win) {
        if (id) win.postMessage({ type: 'open-conversation', conversationId: id });
        return win.focus();
      }
      return self.clients.openWindow(target);
    }),
  );
});
