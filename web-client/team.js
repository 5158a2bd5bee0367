/*
 * Team lead page (#/team, issue 4): per team the routing mode, how many
 * conversations wait and for how long (ticking live), open offers, every
 * agent's presence and load (open / capacity), "off hours" when outside their
 * working hours (routing offers them nothing then), and the queue. Kept live by
 * `workload` frames (first snapshot from GET /api/team/workload); admins also
 * get the team's routing settings form. `routing_alert` frames show as a toast
 * and in a banner on this page. A waiting conversation can be handed to an agent
 * from its queue row (POST /api/conversations/{id}/assign; the server refuses an
 * agent at capacity with a 409 whose message is shown). Two inline SVG charts
 * (charts.js) per team: open conversations per agent (live, from the workload)
 * and today's average first response per agent (GET /api/marketing/analytics
 * with since = local midnight, reloaded every minute while the page shows).
 */
import { can } from './permissions.js';
import { h } from './dom.js';
import { toast, toastError } from './toast.js';
import { serverNow } from './routing-api.js';
import { drawBars } from './charts.js';

const TICK_MS = 1000;
const ANALYTICS_MS = 60000;
const MAX_ALERTS = 5;
const MODE_TEXT = { round_robin: 'Round robin', poll: 'Poll', manual: 'Manual' };
const PRESENCE_TEXT = { online: 'Online', away: 'Away', offline: 'Offline' };
const PRESENCE_RANK = { online: 0, away: 1, offline: 2 };
const CHANNEL_TEXT = { widget: 'Website chat', whatsapp: 'WhatsApp', quick_chat: 'Quick chat' };
const STEP_TEXT = { widen: 'widen', alert_leads: 'alert leads', round_robin: 'round robin' };

/** "45s", "12m 05s", "2h 13m". */
function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function field(label, control, hint) {
  return h('label', { className: 'team-field' }, h('span', {}, label), control, hint ? h('small', {}, hint) : null);
}

/**
 * @param {{store: import('./store.js').Store, routingApi: object, signal: AbortSignal}} opts
 */
export function setupTeamPage({ store, routingApi, assign, signal }) {
  const page = document.getElementById('team-page');
  const layout = document.querySelector('.layout');
  const teamsEl = document.getElementById('team-list');
  const emptyEl = document.getElementById('team-empty');
  const alertsEl = document.getElementById('team-alerts');
  const isAdmin = can(store.me, 'teams.all');
  const sections = new Map(); // team id -> section parts
  let visible = false;
  let clock = 0;
  let analyticsClock = 0;
  let loadSeq = 0;

  // ------------------------------------------------------------------ load

  async function load() {
    const mine = ++loadSeq;
    const now = Date.now();
    try {
      const { teams } = await routingApi.workload();
      if (mine !== loadSeq || signal.aborted) return;
      for (const w of teams || []) store.setWorkload(w, now);
      emptyEl.hidden = store.workloads.size > 0;
    } catch (err) {
      if (mine === loadSeq && err.status !== 401) toastError(err);
    }
    loadAnalytics();
  }

  /** Today's first response per agent, for every team shown. */
  async function loadAnalytics() {
    const midnight = new Date();
    midnight.setHours(0, 0, 0, 0);
    await Promise.all(
      [...store.workloads.keys()].map(async (teamId) => {
        try {
          const a = await routingApi.analytics(teamId, midnight.getTime());
          const p = sections.get(teamId);
          if (!p || signal.aborted) return;
          p.analytics = a;
          drawFirstResponse(p, teamId);
        } catch (err) {
          if (err.status !== 401 && err.status !== 403) toastError(err);
        }
      }),
    );
  }

  // -------------------------------------------------------------- sections

  function makeSection(teamId) {
    const p = {
      root: null,
      title: h('h2', { className: 'team-name' }),
      mode: h('span', { className: 'chip team-mode', dataset: { testid: 'team-mode' } }),
      waiting: h('dd', { dataset: { testid: 'team-waiting' } }),
      oldest: h('dd', { dataset: { testid: 'team-oldest-wait' } }),
      offers: h('dd', { dataset: { testid: 'team-offers-open' } }),
      online: h('dd', {}),
      tbody: h('tbody', {}),
      caption: h('caption', { className: 'sr-only' }),
      queue: h('ol', { className: 'team-queue', dataset: { testid: 'team-queue' } }),
      queueEmpty: h('p', { className: 'team-muted' }, 'Nobody is waiting.'),
      chartOpen: h('div', { className: 'chart', dataset: { testid: 'chart-open' } }),
      chartFirst: h('div', { className: 'chart', dataset: { testid: 'chart-first-response' } }),
      analytics: null, // last GET /api/marketing/analytics answer (today)
      rows: new Map(), // agent id -> {tr, parts}
      queueRows: new Map(), // conversation id -> {li, parts}
      settings: null,
    };
    const stat = (label, dd) => h('div', { className: 'team-stat' }, h('dt', {}, label), dd);
    p.root = h(
      'section',
      { className: 'team-card', dataset: { testid: 'team', teamId }, attrs: { 'aria-label': 'Team' } },
      h('header', { className: 'team-head' }, p.title, p.mode),
      h(
        'dl',
        { className: 'team-stats' },
        stat('Waiting', p.waiting),
        stat('Oldest wait', p.oldest),
        stat('Offers open', p.offers),
        stat('Available', p.online),
      ),
      h(
        'div',
        { className: 'team-grid' },
        h(
          'div',
          // A narrow screen may scroll the table sideways: reachable by keyboard.
          { className: 'team-agents', tabIndex: 0, attrs: { role: 'region', 'aria-label': 'Agents' } },
          h(
            'table',
            { className: 'workload' },
            p.caption,
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                h('th', { scope: 'col' }, 'Agent'),
                h('th', { scope: 'col' }, 'Open / capacity'),
                h('th', { scope: 'col', className: 'num' }, 'Offers'),
              ),
            ),
            p.tbody,
          ),
        ),
        h('div', { className: 'team-queue-box' }, h('h3', {}, 'Queue'), p.queue, p.queueEmpty),
      ),
      h(
        'div',
        { className: 'team-charts' },
        h('figure', {}, h('figcaption', {}, 'Open conversations per agent'), p.chartOpen),
        h('figure', {}, h('figcaption', {}, 'First response today (average)'), p.chartFirst),
      ),
    );
    if (isAdmin) {
      p.settings = makeSettings(teamId);
      p.root.append(p.settings.form);
    }
    sections.set(teamId, p);
    return p;
  }

  function agentRow(p, agentId) {
    let row = p.rows.get(agentId);
    if (row) return row;
    const parts = {
      dot: h('span', { className: 'presence-dot', attrs: { 'aria-hidden': 'true' } }),
      presence: h('span', { className: 'presence-word', dataset: { testid: 'workload-presence' } }),
      name: h('span', { className: 'workload-name' }),
      role: h('span', { className: 'workload-role' }),
      hours: h('span', { className: 'workload-role', dataset: { testid: 'workload-off-hours' } }, 'off hours'),
      fill: h('span', { className: 'load-fill' }),
      bar: null,
      load: h('span', { className: 'load-text', dataset: { testid: 'workload-load' } }),
      offers: h('td', { className: 'num', dataset: { testid: 'workload-offers' } }),
    };
    parts.bar = h('span', { className: 'load-bar', attrs: { role: 'meter', 'aria-valuemin': '0' } }, parts.fill);
    const tr = h(
      'tr',
      { dataset: { testid: 'workload-agent', agentId } },
      h('td', {}, h('span', { className: 'workload-who' }, parts.dot, parts.name, parts.role, parts.presence, parts.hours)),
      h('td', {}, h('span', { className: 'load' }, parts.bar, parts.load)),
      parts.offers,
    );
    row = { tr, parts };
    p.rows.set(agentId, row);
    return row;
  }

  function fillAgent(row, a) {
    const q = row.parts;
    const presence = PRESENCE_TEXT[a.presence] ? a.presence : 'offline';
    row.tr.dataset.presence = presence;
    q.dot.className = `presence-dot is-${presence}`;
    // The word, not only the dot's colour (WCAG 1.4.1); the legend explains both.
    q.presence.textContent = PRESENCE_TEXT[presence];
    q.presence.dataset.presence = presence;
    q.name.textContent = store.me && a.agent_id === store.me.id ? `${a.name} (you)` : a.name;
    q.role.textContent = a.role === 'agent' ? '' : a.role;
    q.role.hidden = a.role === 'agent';
    // Outside their working hours routing offers them nothing: say why they get nothing.
    q.hours.hidden = !a.off_hours;
    const open = Number(a.open) || 0;
    const cap = Math.max(0, Number(a.capacity) || 0);
    q.load.textContent = `${open} / ${cap}`;
    const ratio = cap ? Math.min(1, open / cap) : open ? 1 : 0;
    q.fill.style.transform = `scaleX(${ratio.toFixed(3)})`;
    q.bar.classList.toggle('is-full', cap > 0 && open >= cap);
    q.bar.classList.toggle('is-high', cap > 0 && open < cap && ratio >= 0.75);
    q.bar.setAttribute('aria-valuemax', String(cap));
    q.bar.setAttribute('aria-valuenow', String(Math.min(open, cap)));
    q.bar.setAttribute('aria-label', `${open} of ${cap} open conversations`);
    q.offers.textContent = String(Number(a.offers_open) || 0);
  }

  function queueRow(p, conversationId) {
    let row = p.queueRows.get(conversationId);
    if (row) return row;
    const parts = {
      pos: h('span', { className: 'queue-pos' }),
      channel: h('span', { className: 'queue-channel' }),
      wait: h('span', { className: 'queue-wait' }),
      assign: h('select', {
        className: 'queue-assign',
        dataset: { testid: 'queue-assign' },
        attrs: { 'aria-label': 'Assign to an agent' },
        onchange: (ev) => assignFromQueue(conversationId, ev.target),
      }),
    };
    const li = h(
      'li',
      { dataset: { testid: 'queue-entry', conversationId } },
      parts.pos,
      parts.channel,
      parts.wait,
      parts.assign,
      h('a', { href: `#/c/${encodeURIComponent(conversationId)}`, className: 'queue-open' }, 'Open'),
    );
    row = { li, parts, queuedAt: 0 };
    p.queueRows.set(conversationId, row);
    return row;
  }

  async function assignFromQueue(conversationId, select) {
    const agentId = select.value;
    if (!agentId) return;
    select.disabled = true;
    try {
      await assign(conversationId, agentId);
      toast('Assigned.', 'info');
    } catch (err) {
      toastError(err);
    } finally {
      select.disabled = false;
      select.value = '';
    }
  }

  /** The "Assign to…" choices: every agent with its load; full ones disabled. */
  function fillAssignOptions(select, agents) {
    const keep = select.value;
    select.replaceChildren(
      h('option', { value: '' }, 'Assign to…'),
      ...agents.map((a) =>
        h(
          'option',
          { value: a.agent_id, disabled: Number(a.open) >= Number(a.capacity) },
          `${a.name} · ${PRESENCE_TEXT[a.presence] || a.presence} · ${a.open}/${a.capacity}`,
        ),
      ),
    );
    select.value = keep;
  }

  function renderTeam(teamId) {
    const w = store.workloads.get(teamId);
    if (!w) return;
    const p = sections.get(teamId) || makeSection(teamId);
    p.title.textContent = w.team_name || 'Team';
    p.root.setAttribute('aria-label', `Team ${w.team_name || ''}`.trim());
    p.caption.textContent = `Agents of ${w.team_name || 'the team'}`;
    p.mode.textContent = MODE_TEXT[w.routing_mode] || w.routing_mode || '';
    p.mode.dataset.mode = w.routing_mode || '';
    p.waiting.textContent = String(Number(w.waiting) || 0);
    p.offers.textContent = String(Number(w.offers_open) || 0);
    const agents = [...(w.agents || [])].sort(
      (a, b) =>
        (PRESENCE_RANK[a.presence] ?? 3) - (PRESENCE_RANK[b.presence] ?? 3) || String(a.name).localeCompare(String(b.name)),
    );
    const live = agents.filter((a) => a.presence === 'online').length;
    p.online.textContent = `${live} of ${agents.length} online`;

    const keep = new Set(agents.map((a) => a.agent_id));
    for (const [id, row] of p.rows) {
      if (!keep.has(id)) {
        row.tr.remove();
        p.rows.delete(id);
      }
    }
    agents.forEach((a, i) => {
      const row = agentRow(p, a.agent_id);
      fillAgent(row, a);
      if (p.tbody.children[i] !== row.tr) p.tbody.insertBefore(row.tr, p.tbody.children[i] || null);
    });

    const queue = [...(w.queue || [])].sort((a, b) => a.position - b.position);
    const inQueue = new Set(queue.map((q) => q.conversation_id));
    for (const [id, row] of p.queueRows) {
      if (!inQueue.has(id)) {
        row.li.remove();
        p.queueRows.delete(id);
      }
    }
    queue.forEach((q, i) => {
      const row = queueRow(p, q.conversation_id);
      row.queuedAt = Date.parse(q.queued_at) || 0;
      row.parts.pos.textContent = `#${q.position}`;
      row.parts.channel.textContent = CHANNEL_TEXT[q.channel] || q.channel || '';
      if (document.activeElement !== row.parts.assign) fillAssignOptions(row.parts.assign, agents);
      if (p.queue.children[i] !== row.li) p.queue.insertBefore(row.li, p.queue.children[i] || null);
    });
    p.queueEmpty.hidden = queue.length > 0;
    drawBars(p.chartOpen, {
      title: `Open conversations per agent, ${w.team_name || 'team'}`,
      rows: agents.map((a) => ({ key: a.agent_id, label: a.name || 'Agent', value: Number(a.open) || 0, text: String(Number(a.open) || 0) })),
      empty: 'No agents in this team.',
    });
    drawFirstResponse(p, teamId);
    tickTeam(p, w);
    placeSection(p);
  }

  /** One bar per agent of the team (plus lead owners outside it): today's mean. */
  function drawFirstResponse(p, teamId) {
    const w = store.workloads.get(teamId);
    const perf = new Map(((p.analytics && p.analytics.agent_performance) || []).map((x) => [x.agent_id, x]));
    const agents = [...((w && w.agents) || [])].sort((a, b) => String(a.name).localeCompare(String(b.name)));
    const rows = agents.map((a) => ({ id: a.agent_id, name: a.name }));
    for (const [id, x] of perf) if (!rows.some((r) => r.id === id)) rows.push({ id, name: x.name });
    drawBars(p.chartFirst, {
      title: `Average first response today per agent, ${(w && w.team_name) || 'team'}`,
      rows: rows.map((r) => {
        const ms = perf.get(r.id) && perf.get(r.id).avg_first_response_ms;
        const has = typeof ms === 'number';
        return { key: r.id, label: r.name || 'Agent', value: has ? ms : null, text: has ? duration(ms) : '—' };
      }),
      empty: 'No agents in this team.',
    });
  }

  // Teams in name order.
  function placeSection(p) {
    const ordered = [...sections.entries()]
      .map(([id, s]) => ({ s, name: (store.workloads.get(id) || {}).team_name || '' }))
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((x) => x.s.root);
    ordered.forEach((root, i) => {
      if (teamsEl.children[i] !== root) teamsEl.insertBefore(root, teamsEl.children[i] || null);
    });
    emptyEl.hidden = sections.size > 0;
    if (p.settings && !p.settings.loaded) p.settings.load();
  }

  function tickTeam(p, w) {
    const waiting = Number(w.waiting) || 0;
    // oldest_wait_ms is as of the snapshot; it keeps growing until the next one.
    p.oldest.textContent = waiting ? duration((Number(w.oldest_wait_ms) || 0) + (Date.now() - w.receivedAt)) : '—';
    p.oldest.classList.toggle('is-long', waiting > 0 && (Number(w.oldest_wait_ms) || 0) + (Date.now() - w.receivedAt) >= 120000);
    const now = serverNow();
    for (const row of p.queueRows.values()) {
      row.parts.wait.textContent = row.queuedAt ? `waiting ${duration(now - row.queuedAt)}` : '';
    }
  }

  function tick() {
    for (const [teamId, p] of sections) {
      const w = store.workloads.get(teamId);
      if (w) tickTeam(p, w);
    }
  }

  // -------------------------------------------------------------- settings

  function makeSettings(teamId) {
    const mode = h(
      'select',
      { name: 'routing_mode' },
      h('option', { value: 'round_robin' }, 'Round robin'),
      h('option', { value: 'poll' }, 'Poll (offer to everyone eligible)'),
      h('option', { value: 'manual' }, 'Manual (agents take conversations)'),
    );
    const num = (name, attrs) => h('input', { type: 'number', name, required: true, attrs });
    const capacity = num('default_capacity', { min: '1', max: '1000', step: '1' });
    const timeout = num('offer_timeout_s', { min: '1', max: '86400', step: 'any' });
    const requeue = num('requeue_delay_min', { min: '0', max: '10080', step: 'any' });
    const escalation = h('p', { className: 'team-muted team-escalation' });
    const error = h('p', { className: 'form-error', attrs: { role: 'alert' }, hidden: true });
    const status = h('span', { className: 'team-saved', attrs: { role: 'status' } });
    const save = h('button', { type: 'submit', className: 'btn btn-primary', dataset: { testid: 'team-settings-save' } }, 'Save');
    const fieldset = h(
      'fieldset',
      { className: 'team-fields' },
      h('legend', {}, 'Routing settings'),
      field('Mode', mode),
      field('Default capacity', capacity, 'open conversations per agent'),
      field('Offer timeout (seconds)', timeout, 'each poll round'),
      field('Requeue delay (minutes)', requeue, 'after an agent goes offline'),
    );
    const form = h(
      'form',
      { className: 'team-settings', dataset: { testid: 'team-settings', teamId }, noValidate: true },
      fieldset,
      escalation,
      error,
      h('div', { className: 'team-actions' }, save, status),
    );
    const s = { form, loaded: false, load: () => loadSettings() };

    function showError(text) {
      error.textContent = text || '';
      error.hidden = !text;
    }

    function apply(r) {
      mode.value = r.routing_mode;
      capacity.value = String(r.default_capacity);
      timeout.value = String(r.offer_timeout_ms / 1000);
      requeue.value = String(r.requeue_delay_ms / 60000);
      const steps = (r.escalation || []).map((x) => STEP_TEXT[x] || x);
      escalation.textContent = steps.length
        ? `Unclaimed poll rounds, one step each: ${steps.join(' → ')}; when the steps run out it waits in the queue.`
        : 'When a poll round ends unclaimed, the conversation waits in the queue.';
    }

    async function loadSettings() {
      s.loaded = true;
      fieldset.disabled = true;
      try {
        apply(await routingApi.teamRouting(teamId));
        showError('');
        fieldset.disabled = false;
      } catch (err) {
        s.loaded = false; // try again on the next snapshot
        if (err.status !== 401) showError(err.message);
      }
    }

    function read() {
      const cap = Number(capacity.value);
      const secs = Number(timeout.value);
      const mins = Number(requeue.value);
      if (!capacity.value || !Number.isInteger(cap) || cap < 1 || cap > 1000) {
        return { error: 'Default capacity must be a whole number from 1 to 1000.', el: capacity };
      }
      if (!timeout.value || !Number.isFinite(secs) || secs < 1 || secs > 86400) {
        return { error: 'Offer timeout must be between 1 second and 1 day (86400 seconds).', el: timeout };
      }
      if (requeue.value === '' || !Number.isFinite(mins) || mins < 0 || mins > 10080) {
        return { error: 'Requeue delay must be between 0 and 10080 minutes (7 days).', el: requeue };
      }
      return {
        body: {
          routing_mode: mode.value,
          default_capacity: cap,
          offer_timeout_ms: Math.round(secs * 1000),
          requeue_delay_ms: Math.round(mins * 60000),
        },
      };
    }

    form.addEventListener(
      'submit',
      async (e) => {
        e.preventDefault();
        status.textContent = '';
        const { body, error: problem, el } = read();
        for (const input of [capacity, timeout, requeue]) input.removeAttribute('aria-invalid');
        if (problem) {
          showError(problem);
          el.setAttribute('aria-invalid', 'true');
          el.focus();
          return;
        }
        showError('');
        save.disabled = true;
        form.setAttribute('aria-busy', 'true');
        try {
          apply(await routingApi.updateTeamRouting(teamId, body));
          status.textContent = 'Saved';
          setTimeout(() => {
            if (status.textContent === 'Saved') status.textContent = '';
          }, 3000);
        } catch (err) {
          if (err.status !== 401) showError(err.message);
        } finally {
          save.disabled = false;
          form.removeAttribute('aria-busy');
        }
      },
      { signal },
    );
    for (const input of [mode, capacity, timeout, requeue]) {
      input.addEventListener('input', () => (status.textContent = ''), { signal });
    }
    return s;
  }

  // ---------------------------------------------------------------- alerts

  function onAlert(f) {
    const name = (store.workloads.get(f.team_id) || {}).team_name;
    const text = f.message || 'An offer went unclaimed.';
    toast(name ? `${name}: ${text}` : text, 'warn');
    const item = h(
      'li',
      { className: 'team-alert', dataset: { testid: 'routing-alert', conversationId: f.conversation_id || '' } },
      h('span', { className: 'team-alert-text' }, name ? `${name}: ${text}` : text),
      f.conversation_id ? h('a', { href: `#/c/${encodeURIComponent(f.conversation_id)}` }, 'Open conversation') : null,
      h('button', { type: 'button', className: 'toast-close', attrs: { 'aria-label': 'Dismiss' }, onclick: () => dismiss(item) }, '×'),
    );
    alertsEl.prepend(item);
    while (alertsEl.children.length > MAX_ALERTS) alertsEl.lastElementChild.remove();
    alertsEl.hidden = false;
  }

  function dismiss(item) {
    item.remove();
    alertsEl.hidden = alertsEl.children.length === 0;
  }

  // ------------------------------------------------------------ visibility

  function show() {
    if (visible) return;
    visible = true;
    page.hidden = false;
    layout.hidden = true;
    for (const teamId of store.workloads.keys()) renderTeam(teamId);
    load();
    clearInterval(clock);
    clock = setInterval(tick, TICK_MS);
    clearInterval(analyticsClock);
    analyticsClock = setInterval(loadAnalytics, ANALYTICS_MS);
    const heading = document.getElementById('team-title');
    if (heading) heading.focus({ preventScroll: true });
  }

  function hide() {
    if (!visible) return;
    visible = false;
    page.hidden = true;
    layout.hidden = false;
    clearInterval(clock);
    clock = 0;
    clearInterval(analyticsClock);
    analyticsClock = 0;
  }

  store.on('workload', (teamId) => visible && renderTeam(teamId), signal);
  signal.addEventListener('abort', () => {
    hide();
    sections.clear();
    teamsEl.replaceChildren();
    alertsEl.replaceChildren();
    alertsEl.hidden = true;
    emptyEl.hidden = true;
  });

  return {
    show,
    hide,
    load,
    isVisible: () => visible,
    onFrame(f) {
      switch (f.type) {
        case 'workload':
          store.setWorkload(f);
          break;
        case 'routing_alert':
          onAlert(f);
          break;
        default:
          break;
      }
    },
  };
}
