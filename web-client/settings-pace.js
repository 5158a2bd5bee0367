/*
 * "Sending pace" of a WhatsApp number (Settings → WhatsApp numbers, issue 17 §4,
 * docs/campaigns.md): how fast broadcasts go out from it. A Meta number: messages
 * per second and its messaging limit (the business-initiated conversations Meta
 * allows it a day); a WAHA session: a random gap between two messages, so it does
 * not look like a bot. Opened from a number's card; needs accounts.manage.
 * API: GET/PUT /api/whatsapp/numbers/{id}/pace.
 */
import { h } from './dom.js';
import { toast } from './toast.js';
import { field, select, formError } from './settings-ui.js';

/** Meta messaging limits: [api value, words]. */
export const LIMITS = [
  ['tier250', '250 a day (new portfolio)'],
  ['tier2k', '2,000 a day'],
  ['tier10k', '10,000 a day'],
  ['tier100k', '100,000 a day'],
  ['unlimited', 'Unlimited'],
];

/** A pace in words, for a number's card. */
export function paceWords(p) {
  if (!p) return '';
  if (p.provider === 'meta') {
    const limit = LIMITS.find(([k]) => k === p.limit);
    return `${p.per_second} per second · limit ${limit ? limit[1] : p.limit}`;
  }
  return `one message every ${p.min_gap_ms / 1000}–${p.max_gap_ms / 1000} s`;
}

/**
 * The pace form of number `n` (`{id, label, provider}`), loaded from the hub;
 * `onClose(saved)` when it is saved or cancelled. Returns the form element.
 */
export function paceForm({ request, n, onClose }) {
  const url = `/api/whatsapp/numbers/${encodeURIComponent(n.id)}/pace`;
  const isMeta = n.provider !== 'waha';
  const perSecond = field({ label: 'Messages per second', type: 'number', testid: 'pace-per-second', hint: 'Meta allows 80 by default, up to 1,000 for some numbers.', attrs: { min: '1', max: '1000', inputmode: 'numeric' } });
  const limit = field({ label: 'Messaging limit', testid: 'pace-limit', control: select(LIMITS), hint: 'WhatsApp Manager → the number’s messaging limit. Broadcasts stop for the day when it is reached.' });
  const minGap = field({ label: 'Shortest gap (seconds)', type: 'number', testid: 'pace-min-gap', hint: 'At least 1 second.', attrs: { min: '1', step: '0.5', inputmode: 'decimal' } });
  const maxGap = field({ label: 'Longest gap (seconds)', type: 'number', testid: 'pace-max-gap', attrs: { min: '1', step: '0.5', inputmode: 'decimal' } });
  const error = formError('pace-error');
  const submit = h('button', { type: 'submit', className: 'btn btn-primary', dataset: { testid: 'pace-save' } }, 'Save pace');
  const cancel = h('button', { type: 'button', className: 'btn', onclick: () => onClose(false) }, 'Cancel');
  const form = h(
    'form',
    { className: 'wn-pace', noValidate: true, dataset: { testid: 'pace-form' }, attrs: { 'aria-label': `Sending pace of ${n.label}` } },
    h('h4', { className: 'sf-card-title' }, 'Sending pace'),
    h(
      'p',
      { className: 'sf-muted' },
      isMeta
        ? 'How fast broadcasts go out from this number, within what Meta allows it.'
        : 'Broadcasts from a WAHA session wait a random time between two messages: too fast and WhatsApp may ban the number.',
    ),
    h('div', { className: 'sf-grid' }, ...(isMeta ? [perSecond.root, limit.root] : [minGap.root, maxGap.root])),
    error.el,
    h('div', { className: 'sf-actions' }, submit, cancel),
  );
  for (const f of [perSecond, minGap, maxGap]) f.input.addEventListener('input', () => f.setError(''));

  request('GET', url)
    .then(({ pace }) => {
      if (pace.provider === 'meta') {
        perSecond.input.value = String(pace.per_second);
        limit.input.value = pace.limit;
      } else {
        minGap.input.value = String(pace.min_gap_ms / 1000);
        maxGap.input.value = String(pace.max_gap_ms / 1000);
      }
    })
    .catch((err) => error.show(err.message || 'The pace could not be read.'));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.show('');
    let pace;
    if (isMeta) {
      const v = Number(perSecond.input.value);
      const ok = Number.isInteger(v) && v >= 1 && v <= 1000;
      perSecond.setError(ok ? '' : 'A whole number from 1 to 1,000.');
      if (!ok) return perSecond.input.focus();
      pace = { provider: 'meta', per_second: v, limit: limit.input.value };
    } else {
      const lo = Math.round(Number(minGap.input.value) * 1000);
      const hi = Math.round(Number(maxGap.input.value) * 1000);
      minGap.setError(lo >= 1000 ? '' : 'At least 1 second.');
      maxGap.setError(hi >= lo ? '' : 'Not shorter than the shortest gap.');
      if (!(lo >= 1000)) return minGap.input.focus();
      if (!(hi >= lo)) return maxGap.input.focus();
      pace = { provider: 'waha', min_gap_ms: lo, max_gap_ms: hi };
    }
    submit.disabled = true;
    try {
      await request('PUT', url, { body: { pace } });
      toast(`Pace of ${n.label} saved.`, 'success');
      onClose(true);
    } catch (err) {
      error.show(err.message || 'The pace could not be saved.');
    } finally {
      submit.disabled = false;
    }
    return undefined;
  });
  return form;
}
