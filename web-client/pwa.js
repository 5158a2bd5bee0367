/*
 * The inbox as an installed app (issue 14): registers the service worker
 * (/sw.js, scope /, which caches the app shell so the inbox opens offline), shows
 * the offline notice while the hub cannot be reached, and passes on the service
 * worker's "open this conversation" requests (a clicked notification).
 */

let registration = null;

/** Registers /sw.js once; resolves to the registration, or null where unsupported. */
export function registerServiceWorker() {
  if (registration) return registration;
  if (!('serviceWorker' in navigator)) {
    registration = Promise.resolve(null);
    return registration;
  }
  registration = navigator.serviceWorker.register('/sw.js', { scope: '/' }).catch(() => null);
  return registration;
}

/** The active registration once the worker is ready (null where unsupported). */
export async function readyRegistration() {
  if (!('serviceWorker' in navigator)) return null;
  await registerServiceWorker();
  return navigator.serviceWorker.ready;
}

/**
 * Calls `onOpen(conversationId)` when the service worker asks this page to show
 * a conversation (a notification was clicked while this tab was open).
 */
export function onServiceWorkerOpen(onOpen) {
  if (!('serviceWorker' in navigator)) return;
  navigator.serviceWorker.addEventListener('message', (e) => {
    const d = e.data || {};
    if (d.type === 'open-conversation' && typeof d.conversationId === 'string') onOpen(d.conversationId);
  });
}

/** Shows or hides the offline notice (the hub is unreachable; the shell came from cache). */
export function setOffline(on) {
  const el = document.getElementById('offline-notice');
  if (el) el.hidden = !on;
}

window.addEventListener('offline', () => setOffline(true));
