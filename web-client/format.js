/*
 * Small pure helpers shared by the inbox views: the one time format (locale-aware,
 * relative for recent times), countries, contact names, initials and client
 * message ids. Every screen formats times through this module.
 */

// One locale-aware format for every time on every screen: the browser's locale
// (navigator.languages) and its own 12/24-hour convention, relative for the last
// hour. Formatters are built once; Intl objects are not cheap.
const LOCALES = typeof navigator !== 'undefined' ? navigator.languages : undefined;
const TIME = new Intl.DateTimeFormat(LOCALES, { hour: 'numeric', minute: '2-digit' });
const DAY_TIME = new Intl.DateTimeFormat(LOCALES, { day: 'numeric', month: 'short', hour: 'numeric', minute: '2-digit' });
const FULL = new Intl.DateTimeFormat(LOCALES, { dateStyle: 'medium', timeStyle: 'short' });
const RELATIVE = new Intl.RelativeTimeFormat(LOCALES, { numeric: 'auto', style: 'short' });
const RECENT_MS = 60 * 60 * 1000;

function toDate(value) {
  if (value === null || value === undefined || value === '') return null;
  const d = value instanceof Date ? value : new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

/**
 * The design system's badge tone (design.css `.badge-{tone}`) for a conversation
 * status or a lead priority; the default look for anything else.
 * @param {string} value `open` | `pending` | `resolved` | `high` | …
 * @returns {string} class names to add after `chip`
 */
export function toneClass(value) {
  const tone = { open: 'info', pending: 'warning', resolved: 'success', high: 'danger' }[value];
  return tone ? `badge-${tone}` : '';
}

/**
 * Absolute time for a timestamp (ISO string, epoch ms or Date): "08:15" /
 * "8:15 AM" today, "21 Nov, 08:15" on another day — as the browser's locale writes
 * them.
 */
export function formatTime(value) {
  const d = toDate(value);
  if (!d) return '';
  return d.toDateString() === new Date().toDateString() ? TIME.format(d) : DAY_TIME.format(d);
}

/** Date and time in full ("4 Dec 2026, 17:20"), for tooltips. */
export function formatFull(value) {
  const d = toDate(value);
  return d ? FULL.format(d) : '';
}

/**
 * "just now", "5 min. ago" within the last hour, else formatTime(). The same
 * words for every recent time on every screen.
 */
export function formatWhen(value, now = Date.now()) {
  const d = toDate(value);
  if (!d) return '';
  const ms = now - d.getTime();
  if (ms >= -60000 && ms < 60000) return RELATIVE.format(0, 'second').replace(/^now$/, 'just now');
  if (ms > 0 && ms < RECENT_MS) return RELATIVE.format(-Math.floor(ms / 60000), 'minute');
  return formatTime(d);
}

/** A <time> element showing formatWhen() with the full date as its tooltip. */
export function timeElement(value) {
  const el = document.createElement('time');
  const d = toDate(value);
  if (d) {
    el.dateTime = d.toISOString();
    el.textContent = formatWhen(d);
    el.title = formatFull(d);
  }
  return el;
}

/** Compact age for list rows: "just now", "5 min. ago", "3 hr. ago", "2 days ago". */
export function relativeTime(value, now = Date.now()) {
  const d = toDate(value);
  if (!d) return '';
  const s = Math.max(0, Math.round((now - d.getTime()) / 1000));
  if (s < 60) return formatWhen(d, now);
  if (s < 3600) return RELATIVE.format(-Math.floor(s / 60), 'minute');
  if (s < 86400) return RELATIVE.format(-Math.floor(s / 3600), 'hour');
  return RELATIVE.format(-Math.floor(s / 86400), 'day');
}

/** Duration without "ago", for "waiting 5 min": a number and a short unit. */
export function formatAge(value, now = Date.now()) {
  const d = toDate(value);
  if (!d) return '';
  const s = Math.max(0, Math.round((now - d.getTime()) / 1000));
  const unit = s < 3600 ? ['minute', Math.max(1, Math.floor(s / 60))] : s < 86400 ? ['hour', Math.floor(s / 3600)] : ['day', Math.floor(s / 86400)];
  return new Intl.NumberFormat(LOCALES, { style: 'unit', unit: unit[0], unitDisplay: 'short' }).format(unit[1]);
}

const REGION_NAMES = (() => {
  try {
    return new Intl.DisplayNames(LOCALES, { type: 'region' });
  } catch {
    return null;
  }
})();

/**
 * A contact's country (ISO 3166-1 alpha-2) as a flag emoji and a name in the
 * browser's language: {flag: "🇩🇪", name: "Germany"}; null when unknown.
 */
export function countryInfo(code) {
  const cc = typeof code === 'string' ? code.trim().toUpperCase() : '';
  if (!/^[A-Z]{2}$/.test(cc)) return null;
  // Regional indicator symbols: 'A' (0x41) maps to U+1F1E6.
  const flag = String.fromCodePoint(...[...cc].map((c) => 0x1f1e6 + c.charCodeAt(0) - 65));
  let name = cc;
  try {
    name = (REGION_NAMES && REGION_NAMES.of(cc)) || cc;
  } catch {
    /* an unassigned code: keep the letters */
  }
  return { flag, name };
}

/** The contact's name as agents see it: the server's display name, else what the visitor typed. */
export function contactName(contact) {
  const c = contact || {};
  return c.display_name || c.name || c.email || c.phone || 'Visitor';
}

export function initials(name) {
  const parts = String(name || '?').trim().split(/\s+/).filter(Boolean);
  const letters = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] || '?').slice(0, 2);
  return letters.toUpperCase();
}

export function uuid() {
  // randomUUID exists only in secure contexts (https or localhost).
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Whether a conversation summary is a WhatsApp one (Meta `whatsapp` or `waha`). */
export function isWhatsApp(conv) {
  return Boolean(conv) && (conv.channel === 'whatsapp' || conv.channel === 'waha');
}

/**
 * Delivery ticks as icons (sprite names) with the words a screen reader says:
 * sent ✓, delivered ✓✓, read ✓✓ (coloured by CSS), failed ⚠ with the reason.
 */
const TICKS = {
  pending: ['clock', 'Sending'],
  sending: ['clock', 'Sending'],
  sent: ['check', 'Sent'],
  delivered: ['check-check', 'Delivered'],
  read: ['check-check', 'Read'],
  failed: ['triangle-alert', 'Not delivered'],
};

/** {icon, text} for a message status; failures carry their reason in `text`. */
export function deliveryTick(status, error) {
  const [name, words] = TICKS[status] || [null, ''];
  const text = status === 'failed' && error ? `${words}: ${error}` : words;
  return { icon: name, text };
}

/** "12 KB", "3.4 MB". */
export function formatBytesLabel(n) {
  const v = Number(n) || 0;
  if (v < 1024) return `${v} B`;
  if (v < 1024 * 1024) return `${Math.round(v / 1024)} KB`;
  return `${(v / (1024 * 1024)).toFixed(1)} MB`;
}
