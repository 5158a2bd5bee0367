/*
 * Audit log page (#/audit, issue 16, docs/audit.md) for admins: who changed which
 * account or setting, when and from which address, newest first
 * (GET /api/audit). Filters: the action (one, or a whole area), the actor and a
 * date range in the browser's own days; "Load older" pages back with the
 * answer's `next_before`. Each entry's before/after opens as a list of the fields
 * that changed. Read-only: the log cannot be edited, here or anywhere.
 *
 * Mounted like team.js and bot-settings.js: a page that replaces the inbox layout
 * while the hash is #/audit. It builds its own markup inside #app.
 */
import { formatFull, formatTime } from './format.js';
import { h, icon } from './dom.js';
import { toastError } from './toast.js';

const PAGE_SIZE = 50;

/** Areas and their actions, in words, in the order the filter lists them. */
const AREAS = [
  ['auth.', 'Sign-in', [
    ['auth.login', 'Signed in'],
    ['auth.login_failed', 'Failed sign-in'],
    ['auth.password_changed', 'Changed their password'],
  ]],
  ['agent.', 'Agents', [
    ['agent.created', 'Created an agent'],
    ['agent.updated', 'Changed an agent'],
    ['agent.password_reset', "Reset an agent's password"],
    ['agent.tokens_revoked', "Ended an agent's sessions"],
    ['agent.capacity_changed', "Changed an agent's capacity"],
    ['agent.hours_changed', "Changed an agent's working hours"],
  ]],
  ['team.', 'Teams', [
    ['team.created', 'Created a team'],
    ['team.member_added', 'Added an agent to a team'],
    ['team.member_removed', 'Removed an agent from a team'],
  ]],
  ['routing.', 'Routing', [['routing.settings_changed', 'Changed routing settings']]],
  ['widget.', 'Widget', [['widget.settings_changed', 'Changed widget settings']]],
  ['bot.', 'Bot', [
    ['bot.settings_changed', 'Changed bot settings'],
    ['bot.rule_created', 'Created a bot rule'],
    ['bot.rule_updated', 'Changed a bot rule'],
    ['bot.rule_deleted', 'Deleted a bot rule'],
  ]],
  ['ai.', 'Prompts', [['ai.prompt_changed', 'Changed a prompt']]],
  ['pipeline.', 'Lead pipeline', [['pipeline.changed', 'Changed the lead pipeline']]],
  ['campaign_code.', 'Campaign codes', [
    ['campaign_code.created', 'Created a campaign code'],
    ['campaign_code.updated', 'Changed a campaign code'],
    ['campaign_code.deactivated', 'Deactivated a campaign code'],
  ]],
  ['quick_link.', 'Quick-chat links', [
    ['quick_link.created', 'Created a quick-chat link'],
    ['quick_link.deactivated', 'Deactivated a quick-chat link'],
  ]],
  ['knowledge.', 'Knowledge', [
    ['knowledge.created', 'Added a knowledge document'],
    ['knowledge.updated', 'Changed a knowledge document'],
    ['knowledge.deleted', 'Deleted a knowledge document'],
    ['knowledge.imported', 'Imported knowledge'],
  ]],
];
const ACTION_TEXT = Object.fromEntries(AREAS.flatMap(([, , actions]) => actions));
const TARGET_TEXT = {
  agent: 'Agent',
  team: 'Team',
  bot_rule: 'Bot rule',
  prompt: 'Prompt',
  campaign_code: 'Campaign code',
  quick_link: 'Quick-chat link',
  knowledge_doc: 'Knowledge document',
};
const REDACTED = '[redacted]';

/** An action in words; unknown ones (a newer hub) as they are. */
export function actionText(action) {
  return ACTION_TEXT[action] || action;
}

/** `{a: {b: 1}, c: [1]}` → Map {"a.b" → "1", "c" → "[1]"}: one line per leaf field. */
function flatten(value, prefix = '', out = new Map()) {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) {
    out.set(prefix, value);
  }
  return out;
}

function show(value) {
  if (value === undefined) return '—';
  if (value === null) return 'none';
  if (value === REDACTED) return 'hidden';
  if (typeof value === 'string') return value === '' ? '(empty)' : value;
  return JSON.stringify(value);
}

/**
 * The fields that differ between `before` and `after` (either may be null):
 * `[{field, before, after}]` with values as text, in the order they appear.
 */
export function changedFields(before, after) {
  const b = flatten(before);
  const a = flatten(after);
  const rows = [];
  for (const field of new Set([...b.keys(), ...a.keys()])) {
    const was = b.has(field) ? b.get(field) : undefined;
    const now = a.has(field) ? a.get(field) : undefined;
    // A secret is always "[redacted]": that it was set is the change worth showing.
    const secret = now === REDACTED;
    if (!secret && JSON.stringify(was) === JSON.stringify(now)) continue;
    rows.push({ field, before: before ? show(was) : '—', after: after ? show(now) : '—' });
  }
  return rows;
}

/** Local midnight of a `yyyy-mm-dd` date input's day, plus `days`, as epoch ms. */
function dayStart(value, days = 0) {
  if (!value) return undefined;
  const [y, m, d] = value.split('-').map(Number);
  return new Date(y, m - 1, d + days).getTime();
}

function field(label, control) {
  return h('label', { className: 'team-field' }, h('span', {}, label), control);
}

/**
 * @param {{request: Function, agents: Function, teams: Function, signal: AbortSignal}} opts
 */
export function setupAuditPage({ request, agents, teams, signal }) {
  const layout = document.querySelector('.layout');
  const names = new Map(); // agent or team id -> a name to show
  let visible = false;
  let loadSeq = 0;
  let nextBefore = null;

  const actionSelect = h(
    'select',
    { dataset: { testid: 'audit-action' } },
    h('option', { value: '' }, 'All actions'),
    AREAS.map(([prefix, area, actions]) =>
      h(
        'optgroup',
        { label: area },
        h('option', { value: prefix }, `All: ${area.toLowerCase()}`),
        actions.map(([value, text]) => h('option', { value }, text)),
      ),
    ),
  );
  const actorSelect = h('select', { dataset: { testid: 'audit-actor' } }, h('option', { value: '' }, 'Anyone'));
  const fromInput = h('input', { type: 'date', dataset: { testid: 'audit-from' } });
  const toInput = h('input', { type: 'date', dataset: { testid: 'audit-to' } });
  const clear = h('button', { type: 'button', className: 'btn btn-small', dataset: { testid: 'audit-clear' } }, 'Clear filters');
  const filters = h(
    'form',
    { className: 'team-fields audit-filters', attrs: { role: 'search', 'aria-label': 'Filter the audit log' } },
    field('Action', actionSelect),
    field('Who', actorSelect),
    field('From', fromInput),
    field('To', toInput),
    h('div', { className: 'audit-filter-actions' }, clear),
  );
  const list = h('ol', { className: 'audit-list', dataset: { testid: 'audit-list' }, attrs: { 'aria-label': 'Audit entries, newest first' } });
  const empty = h('p', { className: 'empty', hidden: true }, 'No entries match these filters.');
  const status = h('p', { className: 'sr-only', attrs: { role: 'status' } });
  const older = h('button', { type: 'button', className: 'btn audit-older', hidden: true, dataset: { testid: 'audit-older' } }, 'Load older');
  const back = h('a', { href: '#/', className: 'btn btn-ghost', dataset: { testid: 'audit-back' } }, icon('arrow-left'), 'Inbox');
  const page = h(
    'main',
    { id: 'audit-page', className: 'team-page audit-page', hidden: true, dataset: { testid: 'audit-page' }, attrs: { 'aria-labelledby': 'audit-title' } },
    h('header', { className: 'team-page-head' }, back, h('h1', { id: 'audit-title', className: 'team-title', tabIndex: -1 }, 'Audit log')),
    h('p', { className: 'audit-intro' }, 'Every sign-in and every change to accounts and settings, newest first. Entries cannot be changed or deleted.'),
    filters,
    status,
    list,
    empty,
    older,
  );
  document.getElementById('app').append(page);
  signal.addEventListener('abort', () => page.remove());

  async function loadNames() {
    if (names.size) return;
    try {
      const [{ agents: all }, { teams: ts }] = await Promise.all([agents(), teams()]);
      for (const t of ts || []) names.set(t.id, t.name || t.slug);
      const options = (all || []).map((a) => {
        names.set(a.id, a.name);
        return h('option', { value: a.id }, `${a.name} (${a.email})`);
      });
      actorSelect.append(...options);
    } catch (err) {
      if (err.status !== 401) toastError(err);
    }
  }

  function query(before) {
    const action = actionSelect.value;
    return {
      action,
      actor_id: actorSelect.value,
      since: dayStart(fromInput.value),
      until: dayStart(toInput.value, 1),
      before,
      limit: PAGE_SIZE,
    };
  }

  function target(e) {
    // A sign-in is about the one signing in: said once.
    if (!e.target_kind || (e.target_kind === 'agent' && e.target_id === e.actor_id)) return null;
    const kind = TARGET_TEXT[e.target_kind] || e.target_kind;
    return `${kind} ${names.get(e.target_id) || e.target_id}`;
  }

  function diff(e) {
    const rows = changedFields(e.before, e.after);
    if (!rows.length) return null;
    const table = h(
      'table',
      { className: 'audit-diff' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Field'), h('th', { scope: 'col' }, 'Before'), h('th', { scope: 'col' }, 'After'))),
      h('tbody', {}, rows.map((r) => h('tr', {}, h('th', { scope: 'row' }, r.field), h('td', {}, r.before), h('td', {}, r.after)))),
    );
    const n = rows.length;
    return h('details', { className: 'audit-details' }, h('summary', {}, `${n} ${n === 1 ? 'field' : 'fields'} changed`), table);
  }

  function entry(e) {
    const when = h('time', { dateTime: e.at, title: formatFull(e.at), className: 'audit-when' }, formatTime(e.at));
    const who = e.actor_id
      ? names.get(e.actor_id) || e.actor_label
      : `Someone trying ${e.actor_label}`;
    const failed = e.action === 'auth.login_failed';
    const what = target(e);
    const team = e.team_id && e.target_kind !== 'team' ? names.get(e.team_id) || e.team_id : null;
    return h(
      'li',
      { className: 'audit-entry', dataset: { testid: 'audit-entry', action: e.action } },
      h(
        'div',
        { className: 'audit-head' },
        h('strong', { className: 'audit-action' }, actionText(e.action)),
        failed ? h('span', { className: 'chip badge-danger' }, 'refused') : null,
        when,
      ),
      h(
        'p',
        { className: 'audit-meta' },
        h('span', {}, who),
        what ? h('span', {}, what) : null,
        team ? h('span', {}, `in ${team}`) : null,
        e.ip ? h('span', { className: 'audit-ip' }, `from ${e.ip}`) : null,
      ),
      diff(e),
    );
  }

  async function load(more = false) {
    const mine = ++loadSeq;
    older.disabled = true;
    try {
      await loadNames();
      const result = await request('GET', '/api/audit', { query: query(more ? nextBefore : undefined) });
      if (mine !== loadSeq || signal.aborted) return;
      const items = (result.entries || []).map(entry);
      if (more) list.append(...items);
      else list.replaceChildren(...items);
      nextBefore = result.next_before || null;
      older.hidden = !nextBefore;
      empty.hidden = list.childElementCount > 0;
      status.textContent = `${list.childElementCount} entries shown${nextBefore ? '; older ones can be loaded' : ''}.`;
    } catch (err) {
      if (mine === loadSeq && err.status !== 401) toastError(err);
    } finally {
      older.disabled = false;
    }
  }

  for (const control of [actionSelect, actorSelect, fromInput, toInput]) {
    control.addEventListener('change', () => load(), { signal });
  }
  filters.addEventListener('submit', (ev) => ev.preventDefault(), { signal });
  clear.addEventListener('click', () => {
    filters.reset();
    load();
  }, { signal });
  older.addEventListener('click', () => load(true), { signal });

  function showPage(backHref = '#/') {
    back.href = backHref;
    if (visible) return;
    visible = true;
    page.hidden = false;
    layout.hidden = true;
    load();
    document.getElementById('audit-title').focus({ preventScroll: true });
  }
  function hide() {
    if (!visible) return;
    visible = false;
    page.hidden = true;
    layout.hidden = false;
  }

  return { show: showPage, hide, isVisible: () => visible };
}
