/*
 * Toasts: short, self-dismissing notices (mostly API errors) in a live region
 * that index.html provides as #toasts.
 */
import { h } from './dom.js';

const SHOW_MS = 5000;
const MAX_VISIBLE = 3;

export function toast(message, kind = 'error') {
  const region = document.getElementById('toasts');
  if (!region || !message) return;
  const item = h(
    'div',
    { className: `toast toast-${kind}`, attrs: { role: kind === 'error' ? 'alert' : 'status' } },
    h('span', { className: 'toast-text' }, message),
    h('button', { type: 'button', className: 'toast-close', attrs: { 'aria-label': 'Dismiss' }, onclick: () => item.remove() }, '×'),
  );
  region.append(item);
  while (region.children.length > MAX_VISIBLE) region.firstElementChild.remove();
  setTimeout(() => item.remove(), SHOW_MS);
}

/** Toasts an error from the API (or anything thrown) with a readable message. */
export function toastError(err, fallback = 'Something went wrong.') {
  toast((err && err.message) || fallback, 'error');
}
