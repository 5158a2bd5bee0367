/*
 * The Leads page (#/leads and #/leads/{id}, issue 16, docs/leads-screens.md) for
 * agents with leads.read: the team's leads as a list (name, stage, owner, priority,
 * source or campaign, last activity) or as a kanban board by stage
 * (leads-board.js), narrowed by stage, owner and a search over names, emails and
 * phones; a lead's own page is lead-detail.js. Moving a card is a manual stage
 * change (PATCH /api/leads/{id}); the hub's refusal is shown in words and the card
 * goes back. Without leads.edit (marketing) everything is read-only.
 *
 * Mounted like audit.js: a page that replaces the inbox layout while the hash is
 * #/leads…; it builds its own markup inside #app. `lead` frames refresh it.
 */
import { h, icon } from './dom.js';
import { timeElement, toneClass } from './format.js';
import { toast, toastError } from './toast.js';
import { can } from './permissions.js';
import { leadName } from './leads-data.js';
import { renderBoard } from './leads-board.js';
import { setupLeadDetail } from './lead-detail.js';

const enc = encodeURIComponent;
const VIEW_KEY = 'switchboard.leads.view';

function field(label, control, extra = {}) {
  return h('label', { className: 'team-field', ...extra }, h('span', {}, label), control);
}

/**
 * @param {{request: Function, data: ReturnType<import('./leads-data.js').createLeadsData>,
 *          signal: AbortSignal}} opts
 */
export function setupLeadsPage({ request, data, signal }) {
  const layout = document.querySelector('.layout');
  const editable = can(data.me, 'leads.edit');
  let visible = false;
  let leads = [];
  let stages = [];
  let loadSeq = 0;
  let view = localStorage.getItem(VIEW_KEY) === 'board' ? 'board' : 'list';
  let detailId = null;

  const teamSelect = h('select', { dataset: { testid: 'leads-team' } });
  const stageSelect = h('select', { dataset: { testid: 'leads-stage' } });
  const ownerSelect = h('select', { dataset: { testid: 'leads-owner' } });
  const search = h('input', { type: 'search', placeholder: 'Name, email or phone', dataset: { testid: 'leads-search' } });
  const teamField = field('Team', teamSelect, { hidden: true });
  const toggles = ['list', 'board'].map((v) =>
    h(
      'button',
      { type: 'button', className: 'btn btn-small', dataset: { view: v, testid: `leads-view-${v}` }, onclick: () => setView(v) },
      icon(v === 'list' ? 'list' : 'kanban'),
      v === 'list' ? 'List' : 'Board',
    ),
  );
  const filters = h(
    'form',
    { className: 'team-fields leads-filters', attrs: { role: 'search', 'aria-label': 'Filter the leads' } },
    teamField,
    field('Stage', stageSelect),
    field('Owner', ownerSelect),
    field('Search', search),
    h('div', { className: 'leads-toggle', attrs: { role: 'group', 'aria-label': 'Show as' } }, toggles),
  );
  const body = h('div', { className: 'leads-body' });
  const status = h('p', { className: 'sr-only', attrs: { role: 'status' }, dataset: { testid: 'leads-status' } });
  const back = h('a', { href: '#/', className: 'btn btn-ghost' }, icon('arrow-left'), 'Inbox');
  const title = h('h1', { id: 'leads-title', className: 'team-title', tabIndex: -1 }, 'Leads');
  const listPart = h('div', { className: 'leads-main' }, filters, status, body);
  const detail = setupLeadDetail({ request, data, signal });
  const page = h(
    'main',
    { id: 'leads-page', className: 'team-page leads-page', hidden: true, dataset: { testid: 'leads-page' }, attrs: { 'aria-labelledby': 'leads-title' } },
    h('header', { className: 'team-page-head' }, back, title),
    listPart,
    detail.element,
  );
  document.getElementById('app').append(page);
  signal.addEventListener('abort', () => page.remove());

  function setView(v) {
    view = v;
    localStorage.setItem(VIEW_KEY, v);
    render();
  }

  async function fillFilters() {
    await data.load();
    const teams = data.teams();
    if (!teamSelect.options.length) {
      teamSelect.append(...teams.map((t) => h('option', { value: t.id }, t.name || t.slug)));
      teamField.hidden = teams.length < 2;
    }
    const team = teamSelect.value;
    stages = team ? await data.stages(team) : [];
    const keepStage = stageSelect.value;
    stageSelect.replaceChildren(h('option', { value: '' }, 'All stages'), stages.map((s) => h('option', { value: s.key }, s.name)));
    stageSelect.value = stages.some((s) => s.key === keepStage) ? keepStage : '';
    const keepOwner = ownerSelect.value;
    ownerSelect.replaceChildren(
      h('option', { value: '' }, 'Anyone'),
      h('option', { value: 'me' }, 'Me'),
      data.members(team).filter((a) => a.id !== data.me.id).map((a) => h('option', { value: a.id }, a.name)),
    );
    ownerSelect.value = keepOwner;
  }

  async function load() {
    const mine = ++loadSeq;
    try {
      await fillFilters();
      const query = { team: teamSelect.value || undefined, stage: stageSelect.value || undefined, owner: ownerSelect.value || undefined, limit: 500 };
      const result = await request('GET', '/api/leads', { query });
      if (mine !== loadSeq || signal.aborted) return;
      leads = result.leads || [];
      render();
    } catch (err) {
      if (mine === loadSeq && err.status !== 401) toastError(err);
    }
  }

  function shown() {
    const q = search.value.trim().toLowerCase();
    if (!q) return leads;
    return leads.filter((l) =>
      (l.contacts || []).some((c) => [c.display_name, c.name, c.email, c.phone].some((v) => v && v.toLowerCase().includes(q))),
    );
  }

  function row(l) {
    const source = [l.campaign_code, l.source, l.source_detail].filter(Boolean).join(' · ');
    return h(
      'li',
      { className: 'leads-row', dataset: { testid: 'leads-row', lead: l.id } },
      h('a', { href: `#/leads/${enc(l.id)}`, className: 'leads-row-name' }, leadName(l)),
      h('span', { className: 'leads-row-stage', dataset: { testid: 'leads-row-stage' } }, data.stageName(l.team_id, l.stage)),
      h('span', { className: 'leads-row-owner', dataset: { testid: 'leads-row-owner' } }, l.owner_id ? data.agentName(l.owner_id) : 'No owner'),
      h('span', { className: `chip ${toneClass(l.priority)}` }, l.priority),
      h('span', { className: 'leads-row-source' }, source),
      h('span', { className: 'leads-row-when' }, timeElement(l.updated_at)),
    );
  }

  function render() {
    for (const b of toggles) b.setAttribute('aria-pressed', String(b.dataset.view === view));
    const items = shown();
    status.textContent = `${items.length} ${items.length === 1 ? 'lead' : 'leads'} shown.`;
    if (view === 'board') {
      body.replaceChildren(renderBoard({ stages, leads: items, editable, agentName: data.agentName, onMove: move }));
      return;
    }
    const head = h(
      'li',
      { className: 'leads-row leads-head', attrs: { 'aria-hidden': 'true' } },
      ['Name', 'Stage', 'Owner', 'Priority', 'Source', 'Last activity'].map((t) => h('span', {}, t)),
    );
    body.replaceChildren(
      items.length
        ? h('ul', { className: 'leads-list', dataset: { testid: 'leads-list' }, attrs: { 'aria-label': 'Leads, most recent first' } }, head, items.map(row))
        : h('p', { className: 'empty' }, 'No leads match these filters.'),
    );
  }

  /** A manual stage change; on refusal the reason in words and the card back. */
  async function move(lead, stage) {
    const was = lead.stage;
    lead.stage = stage;
    render();
    let said;
    try {
      const fresh = await request('PATCH', `/api/leads/${enc(lead.id)}`, { body: { stage } });
      Object.assign(lead, fresh);
      said = `${leadName(lead)} moved to ${data.stageName(lead.team_id, stage)}.`;
    } catch (err) {
      lead.stage = was;
      if (err.status === 401) return;
      said = `${leadName(lead)} was not moved: ${err.message || 'the hub refused.'}`;
      toast(said);
    }
    render();
    // After render(): its count would overwrite the news.
    status.textContent = said;
  }

  for (const control of [teamSelect, stageSelect, ownerSelect]) control.addEventListener('change', () => load(), { signal });
  search.addEventListener('input', render, { signal });
  filters.addEventListener('submit', (ev) => ev.preventDefault(), { signal });

  /** Shows the list (`sub` empty) or one lead (`sub` its id). */
  function show(sub, backHref = '#/') {
    back.href = sub ? '#/leads' : backHref;
    back.lastChild.textContent = sub ? 'Leads' : 'Inbox';
    detailId = sub || null;
    listPart.hidden = Boolean(sub);
    title.textContent = sub ? 'Lead' : 'Leads';
    const first = !visible;
    visible = true;
    page.hidden = false;
    layout.hidden = true;
    if (sub) detail.show(sub);
    else {
      detail.hide();
      load();
    }
    if (first || sub) title.focus({ preventScroll: true });
  }

  function hide() {
    if (!visible) return;
    visible = false;
    detailId = null;
    detail.hide();
    page.hidden = true;
    layout.hidden = false;
  }

  /** `lead` and `timeline` frames: refresh whatever is on screen. */
  function onFrame(f) {
    if (!visible) return;
    if (detailId) detail.onFrame(f);
    else if (f.type === 'lead') {
      const known = leads.find((l) => l.id === f.id);
      if (known) {
        Object.assign(known, f);
        render();
      } else load();
    }
  }

  return { show, hide, onFrame, isVisible: () => visible };
}
