/*
 * The Broadcasts page (#/broadcasts, issue 17 §4, docs/campaigns.md "The
 * Broadcasts page") for agents with campaigns.send: the list (name, state,
 * number, segment, sent of recipients as a bar, created), the create / edit
 * wizard (#/broadcasts/new, #/broadcasts/{id}/edit, broadcast-wizard.js) and one
 * broadcast's page (#/broadcasts/{id}) with its live progress — polled every 2 s
 * while scheduled, sending or paused, and never after leaving it — its analytics
 * (delivered, read, replies, opt-outs, leads; skipped by reason, failed by error)
 * and the actions its state allows: Pause, Resume, Cancel (asked first),
 * Unschedule, Edit, Send now.
 * API: GET /api/broadcasts, GET /api/broadcasts/{id},
 * POST /api/broadcasts/{id}/{send,pause,resume,cancel,unschedule}.
 *
 * Mounted like tasks-page.js: a page that replaces the inbox layout.
 */
import { h, icon } from './dom.js';
import { formatFull, formatWhen } from './format.js';
import { toast, toastError } from './toast.js';
import { confirmDialog } from './settings-ui.js';
import { createWizard, sourceWords } from './broadcast-wizard.js';

const enc = encodeURIComponent;
/** How often a live broadcast is read again, ms. */
const POLL_MS = 2000;
const LIVE = new Set(['scheduled', 'sending', 'paused']);

/** A state as [word, badge class, icon]. */
const STATES = {
  draft: ['Draft', '', 'list-todo'],
  scheduled: ['Scheduled', 'badge-info', 'clock'],
  sending: ['Sending', 'badge-accent', 'send'],
  paused: ['Paused', 'badge-warning', 'pause'],
  done: ['Done', 'badge-success', 'circle-check'],
  cancelled: ['Cancelled', 'badge-danger', 'x'],
};

/** Why recipients were skipped, in words. */
export const SKIP_WORDS = {
  opted_out: 'Opted out of marketing',
  unreachable: 'No WhatsApp number',
  window_closed: '24-hour window closed (free text)',
  missing_variable: 'No value for a variable (name or campaign code)',
  invalid_variable: 'A variable’s value was refused',
};

/** The state badge of a broadcast. */
export function stateBadge(state) {
  const [word, tone, ic] = STATES[state] || [state, '', 'info'];
  return h('span', { className: `badge ${tone}`, dataset: { testid: 'bc-state', state } }, icon(ic), word);
}

/** How far it got: copies that left (sent, delivered, read or failed) of the recipients. */
function progress(b) {
  const s = b.stats;
  const handled = s.recipients - s.pending;
  return { handled: Math.max(0, handled), total: s.recipients };
}

function bar(b, label) {
  const { handled, total } = progress(b);
  const el = h('progress', { className: 'bc-bar', max: Math.max(total, 1), value: handled, attrs: { 'aria-label': label } });
  return h('div', { className: 'bc-progress' }, el, h('span', { className: 'bc-progress-text', dataset: { testid: 'bc-progress-text' } }, `${b.stats.sent} sent of ${total}`));
}

const sum = (pairs) => (pairs || []).reduce((n, [, c]) => n + c, 0);

/**
 * @param {{request: Function, navigate: Function, signal: AbortSignal}} opts
 */
export function setupBroadcastsPage({ request, navigate, signal }) {
  const layout = document.querySelector('.layout');
  let visible = false;
  let route = null; // {view: 'list'|'new'|'detail'|'edit', id}
  let seq = 0;
  let timer = 0;

  const back = h('a', { href: '#/', className: 'btn btn-ghost' }, icon('arrow-left'), 'Inbox');
  const newBtn = h('a', { href: '#/broadcasts/new', className: 'btn btn-primary', dataset: { testid: 'bc-new' } }, icon('plus'), 'New broadcast');
  const body = h('div', { className: 'bc-body' });
  const status = h('p', { className: 'sr-only', attrs: { role: 'status' } });
  const page = h(
    'main',
    { id: 'broadcasts-page', className: 'team-page bc-page', hidden: true, dataset: { testid: 'broadcasts-page' }, attrs: { 'aria-labelledby': 'broadcasts-title' } },
    h('header', { className: 'team-page-head' }, back, h('h1', { id: 'broadcasts-title', className: 'team-title', tabIndex: -1 }, 'Broadcasts'), h('span', { className: 'spacer' }), newBtn),
    status,
    body,
  );
  document.getElementById('app').append(page);
  signal.addEventListener('abort', () => {
    stopPolling();
    page.remove();
  });

  function stopPolling() {
    clearTimeout(timer);
    timer = 0;
  }

  // ---- list ----
  function listRow(b) {
    const created = h('span', { className: 'bc-when-created', title: formatFull(b.created_at) }, formatWhen(b.created_at));
    return h(
      'li',
      { className: 'bc-row', dataset: { testid: 'bc-row', id: b.id } },
      h('a', { href: `#/broadcasts/${enc(b.id)}`, className: 'bc-row-name', dataset: { testid: 'bc-row-link' } }, b.name),
      h('span', { className: 'bc-row-state' }, stateBadge(b.state)),
      h('span', { className: 'bc-row-meta' }, icon('inbox'), b.number_label || b.number_id),
      h('span', { className: 'bc-row-meta' }, icon('users'), b.segment_name || 'Deleted segment'),
      h('span', { className: 'bc-row-progress' }, bar(b, `${b.name}: progress`)),
      h('span', { className: 'bc-row-meta' }, h('span', { className: 'sr-only' }, 'Created '), created),
    );
  }

  async function showList() {
    const mine = ++seq;
    newBtn.hidden = false;
    try {
      const { broadcasts } = await request('GET', '/api/broadcasts');
      if (mine !== seq || signal.aborted) return;
      const head = h(
        'li',
        { className: 'bc-row bc-head', attrs: { 'aria-hidden': 'true' } },
        ['Name', 'State', 'Number', 'Segment', 'Progress', 'Created'].map((t) => h('span', {}, t)),
      );
      body.replaceChildren(
        broadcasts.length
          ? h('ul', { className: 'bc-list', dataset: { testid: 'bc-list' }, attrs: { 'aria-label': 'Broadcasts, newest first' } }, head, ...broadcasts.map(listRow))
          : h('p', { className: 'empty', dataset: { testid: 'bc-empty' } }, 'No broadcast yet. Create the first one: pick a number, a template and a segment.'),
      );
      status.textContent = `${broadcasts.length} ${broadcasts.length === 1 ? 'broadcast' : 'broadcasts'}.`;
      // A live one in the list: read the list again, like the detail page does.
      if (broadcasts.some((b) => b.state === 'sending')) timer = setTimeout(() => visible && route.view === 'list' && showList(), POLL_MS * 2);
    } catch (err) {
      if (mine === seq && err.status !== 401) toastError(err);
    }
  }

  // ---- wizard ----
  async function showWizard(id) {
    const mine = ++seq;
    newBtn.hidden = true;
    let existing = null;
    if (id) {
      try {
        ({ broadcast: existing } = await request('GET', `/api/broadcasts/${enc(id)}`));
      } catch (err) {
        if (err.status !== 401) toastError(err);
        return;
      }
      if (mine !== seq) return;
    }
    const wizard = createWizard({
      request,
      existing,
      onDone(b) {
        toast(b.state === 'sending' ? 'Broadcast started.' : b.state === 'scheduled' ? 'Broadcast scheduled.' : 'Draft saved.', 'success');
        navigate(`#/broadcasts/${enc(b.id)}`);
      },
      onCancel: () => navigate(existing ? `#/broadcasts/${enc(existing.id)}` : '#/broadcasts'),
    });
    body.replaceChildren(h('a', { href: '#/broadcasts', className: 'btn btn-ghost bc-up' }, icon('arrow-left'), 'All broadcasts'), wizard.element);
    await wizard.start();
  }

  // ---- one broadcast ----
  function stat(label, value, testid, note) {
    return h('div', { className: 'bc-stat', dataset: { testid } }, h('dt', {}, label), h('dd', {}, h('strong', {}, String(value)), note ? h('small', {}, note) : null));
  }

  function breakdown(title, pairs, words, testid) {
    return h(
      'section',
      { className: 'settings-card bc-breakdown', dataset: { testid }, attrs: { 'aria-label': title } },
      h('h3', { className: 'sf-card-title' }, title),
      pairs.length
        ? h('ul', { className: 'bc-reasons' }, pairs.map(([k, n]) => h('li', { dataset: { reason: k } }, h('span', {}, words[k] || k), h('strong', {}, String(n)))))
        : h('p', { className: 'sf-muted' }, 'None.'),
    );
  }

  function actions(b) {
    const btn = (label, ic, action, extra = '') =>
      h('button', { type: 'button', className: `btn ${extra}`, dataset: { testid: `bc-${action}` }, onclick: () => act(b, action) }, ic ? icon(ic) : null, label);
    const list = [];
    if (b.state === 'draft') list.push(btn('Send now', 'send', 'send', 'btn-primary'));
    if (b.state === 'scheduled') list.push(btn('Send now', 'send', 'send', 'btn-primary'), btn('Unschedule', 'rotate-ccw', 'unschedule'));
    if (b.state === 'sending') list.push(btn('Pause', 'pause', 'pause'));
    if (b.state === 'paused') list.push(btn('Resume', 'play', 'resume', 'btn-primary'));
    if (b.state === 'draft' || b.state === 'scheduled') list.push(h('a', { href: `#/broadcasts/${enc(b.id)}/edit`, className: 'btn', dataset: { testid: 'bc-edit' } }, 'Edit'));
    if (LIVE.has(b.state) || b.state === 'draft') list.push(btn('Cancel broadcast', 'x', 'cancel', 'btn-danger'));
    return list.length ? h('div', { className: 'sf-actions bc-actions' }, ...list) : null;
  }

  function timeline(b) {
    const rows = [['Created', b.created_at]];
    if (b.state === 'scheduled' && b.send_at) rows.push([`Starts (${b.time_zone})`, b.send_at]);
    if (b.started_at) rows.push(['Started', b.started_at]);
    if (b.finished_at) rows.push([b.state === 'cancelled' ? 'Stopped' : 'Finished', b.finished_at]);
    return rows.map(([k, v]) => h('span', { className: 'bc-time' }, `${k} `, h('time', { dateTime: v, title: formatFull(v) }, formatWhen(v))));
  }

  function paintDetail(b) {
    const s = b.stats;
    const skipped = sum(s.skipped);
    const content =
      b.content.kind === 'template'
        ? h('p', { className: 'bc-row-meta' }, icon('message-circle'), `Template ${b.content.name} (${b.content.language})`, b.content.variables.length ? ` · ${b.content.variables.map((v, i) => `{{${i + 1}}} ${sourceWords(v)}`).join(', ')}` : '')
        : h('p', { className: 'bc-row-meta' }, icon('message-circle'), 'Free text: ', h('q', {}, b.content.body));
    body.replaceChildren(
      h('a', { href: '#/broadcasts', className: 'btn btn-ghost bc-up', dataset: { testid: 'bc-up' } }, icon('arrow-left'), 'All broadcasts'),
      h(
        'article',
        { className: 'settings-card bc-detail', dataset: { testid: 'bc-detail', state: b.state }, attrs: { 'aria-labelledby': 'bc-detail-name' } },
        h('div', { className: 'bc-detail-head' }, h('h2', { id: 'bc-detail-name', className: 'bc-detail-name', tabIndex: -1 }, b.name), stateBadge(b.state)),
        h('p', { className: 'bc-row-meta' }, icon('inbox'), `${b.number_label || b.number_id} (${b.provider === 'waha' ? 'WAHA' : 'Meta'})`, ' · ', icon('users'), b.segment_name || 'Deleted segment', ` · attribution ${b.attribution_days} days`),
        content,
        h('p', { className: 'bc-row-meta bc-times' }, ...timeline(b)),
        bar(b, 'Progress'),
        h('p', { className: 'sr-only', attrs: { role: 'status' }, dataset: { testid: 'bc-live' } }, `${STATES[b.state] ? STATES[b.state][0] : b.state}: ${s.sent} sent of ${s.recipients}.`),
        actions(b),
      ),
      h(
        'dl',
        { className: 'bc-stats', dataset: { testid: 'bc-stats' } },
        stat('Recipients', s.recipients, 'bc-stat-recipients'),
        stat('Waiting', s.pending, 'bc-stat-pending'),
        stat('Sent', s.sent, 'bc-stat-sent', 'accepted by WhatsApp'),
        stat('Delivered', s.delivered, 'bc-stat-delivered'),
        stat('Read', s.read, 'bc-stat-read'),
        stat('Failed', s.failed, 'bc-stat-failed'),
        stat('Skipped', skipped, 'bc-stat-skipped'),
        stat('Replied', s.replied, 'bc-stat-replied', `within ${b.attribution_days} days`),
        stat('Opted out', s.opted_out, 'bc-stat-opted-out'),
        stat('Leads created', s.leads_created, 'bc-stat-leads'),
        stat('Leads won', s.leads_won, 'bc-stat-won'),
      ),
      h('div', { className: 'bc-breakdowns' }, breakdown('Skipped, by reason', s.skipped || [], SKIP_WORDS, 'bc-skipped'), breakdown('Failed, by error', s.failed_by_error || [], {}, 'bc-failed')),
    );
  }

  async function showDetail(id, first) {
    const mine = ++seq;
    stopPolling();
    newBtn.hidden = true;
    try {
      const { broadcast: b } = await request('GET', `/api/broadcasts/${enc(id)}`);
      if (mine !== seq || signal.aborted || !visible) return;
      const focused = document.activeElement;
      const keep = focused && body.contains(focused) && focused.dataset.testid;
      paintDetail(b);
      if (keep) {
        // The button pressed may be gone (Pause became Resume): the heading then.
        const again = body.querySelector(`[data-testid="${keep}"]`) || body.querySelector('#bc-detail-name');
        again.focus({ preventScroll: true });
      } else if (first) {
        body.querySelector('#bc-detail-name').focus({ preventScroll: true });
      }
      if (LIVE.has(b.state)) timer = setTimeout(() => showDetail(id, false), POLL_MS);
    } catch (err) {
      if (mine === seq && err.status !== 401) toastError(err);
    }
  }

  async function act(b, action) {
    if (action === 'cancel') {
      const ok = await confirmDialog({
        title: `Cancel ${b.name}?`,
        text: 'No more copies go out; copies already sent stay sent. A cancelled broadcast cannot be restarted.',
        confirmLabel: 'Cancel broadcast',
        danger: true,
        testid: 'bc-confirm',
      });
      if (!ok) return;
    }
    try {
      await request('POST', `/api/broadcasts/${enc(b.id)}/${action}`, { body: {} });
      toast({ send: 'Broadcast started.', pause: 'Paused.', resume: 'Resumed.', cancel: 'Broadcast cancelled.', unschedule: 'Back to draft.' }[action], 'success');
    } catch (err) {
      if (err.status !== 401) toastError(err);
    }
    if (visible && route.view === 'detail' && route.id === b.id) showDetail(b.id, false);
  }

  /** Shows `sub` (the hash after `#/broadcasts/`: '', 'new', '{id}', '{id}/edit'). */
  function show(sub = '', backHref = '#/') {
    back.href = backHref;
    const first = !visible;
    visible = true;
    page.hidden = false;
    layout.hidden = true;
    stopPolling();
    const [a, b] = sub.split('/').map((x) => decodeURIComponent(x || ''));
    route = !a ? { view: 'list' } : a === 'new' ? { view: 'new' } : b === 'edit' ? { view: 'edit', id: a } : { view: 'detail', id: a };
    if (route.view === 'list') showList();
    else if (route.view === 'new') showWizard(null);
    else if (route.view === 'edit') showWizard(route.id);
    else showDetail(route.id, true);
    if (first || route.view === 'list') document.getElementById('broadcasts-title').focus({ preventScroll: true });
  }

  function hide() {
    if (!visible) return;
    visible = false;
    ++seq;
    stopPolling();
    page.hidden = true;
    layout.hidden = false;
  }

  return { show, hide, isVisible: () => visible };
}
