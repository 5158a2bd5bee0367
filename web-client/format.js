/*
 * Small pure helpers shared by the inbox views: time formatting, initials and
 * client message ids.
 */

const pad2 = (n) => String(n).padStart(2, '0');

function toDate(iso) {
  const d = iso ? new Date(iso) : null;
  return d && !isNaN(d) ? d : null;
}

/** "08:15" today, "21 Nov 08:15" on another day. */
export function formatTime(iso) {
  const d = toDate(iso);
  if (!d) return '';
  const hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  if (d.toDateString() === new Date().toDateString()) return hm;
  return `${d.toLocaleDateString(undefined, { day: 'numeric', month: 'short' })} ${hm}`;
}

/** Compact age: "now", "5m", "3h", "2d". */
export function relativeTime(iso, now = Date.now()) {
  const d = toDate(iso);
  if (!d) return '';
  const s = Math.max(0, Math.round((now - d.getTime()) / 1000));
  if (s < 60) return 'now';
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
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

const DELIVERY_TEXT = {
  pending: 'Sending…',
  sending: 'Sending…',
  sent: '✓',
  delivered: '✓✓',
  read: '✓✓',
};

/** Tick text for a WhatsApp delivery status; failures say why. */
export function deliveryText(status, error) {
  if (status === 'failed') return `Not delivered${error ? `: ${error}` : ''}`;
  return DELIVERY_TEXT[status] || '';
}

/** "12 KB", "3.4 MB". */
export function formatBytesLabel(n) {
  const v = Number(n) || 0;
  if (v < 1024) return `${v} B`;
  if (v < 1024 * 1024) return `${Math.round(v / 1024)} KB`;
  return `${(v / (1024 * 1024)).toFixed(1)} MB`;
}
