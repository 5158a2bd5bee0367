/*
 * Marketing dashboard (#/dashboard, seed 001, issue 16; docs/dashboard.md) for
 * agents with analytics.read: one team's active conversations, leads won and lost,
 * conversion, the stage distribution, the funnel between stages, campaign, source
 * and agent performance as bar charts (charts.js), and the pending handovers with
 * a one-click "Take over" for those who may answer conversations.
 *
 * Live: while the page is visible, lead, handover and conversation frames ask for
 * a reload; reloads are coalesced so a burst of frames costs one round of requests,
 * and a reload that was overtaken by a newer one is dropped.
 *
 * Mounted like audit.js: a page that replaces the inbox layout while the hash is
 * #/dashboard, built inside #app.
 */
import { workableTeams } from './permissions.js';
import { drawBars } from './charts.js';
import { h, icon } from './dom.js';
import { formatAge } from './format.js';
import { toast, toastError } from './toast.js';

const LIVE_FRAMES = new Set(['lead', 'handover', 'conversation', 'assigned', 'timeline']);

const percent = (x) => `${Math.round((Number(x) || 0) * 1000) / 10}%`;

/** A figure with its caption (a tile at the top of the page). */
function tile(label, testid) {
  const value = h('strong', { className: 'dash-value', dataset: { testid } }, '–');
  return { el: h('div', { className: 'dash-tile' }, value, h('span', { className: 'dash-label' }, label)), value };
}

/** A titled card holding one chart. */
function chartCard(title, testid) {
  const host = h('div', { className: 'dash-chart', dataset: { testid } });
  const el = h('section', { className: 'dash-card', attrs: { 'aria-label': title } }, h('h2', {}, title), host);
  return { el, host };
}

/**
 * @param {{request: Function, teams: Function, me: object, canTakeOver: boolean,
 *   navigate: (hash: string) => void, signal: AbortSignal}} opts
 */
export function setupDashboard({ request, teams, me, canTakeOver, navigate, signal }) {
  const layout = document.querySelector('.layout');
  let visible = false;
  let loadSeq = 0;
  let pending = null; // a coalesced reload waiting for the current one
  let loading = null;
  let stageLabels = new Map();
  let stageOrder = [];

  const teamSelect = h('select', { dataset: { testid: 'dash-team' } });
  const tiles = {
    active: tile('Active conversations', 'dash-active'),
    leads: tile('Leads', 'dash-leads'),
    won: tile('Won', 'dash-won'),
    lost: tile('Lost', 'dash-lost'),
    conversion: tile('Conversion', 'dash-conversion'),
  };
  const charts = {
    stages: chartCard('Leads by stage', 'dash-stages'),
    funnel: chartCard('Funnel: share reaching each stage', 'dash-funnel'),
    campaigns: chartCard('Campaigns: leads · won', 'dash-campaigns'),
    sources: chartCard('Sources: leads · won', 'dash-sources'),
    agents: chartCard('Agents: won of their leads', 'dash-agents'),
  };
  const handoverList = h('ul', { className: 'dash-handovers', dataset: { testid: 'dash-handovers' } });
  const handoverEmpty = h('p', { className: 'empty' }, 'No customer is waiting for a person.');
  const status = h('p', { className: 'sr-only', attrs: { role: 'status' } });
  const back = h('a', { href: '#/', className: 'btn btn-ghost' }, icon('arrow-left'), 'Inbox');
  const page = h(
    'main',
    { id: 'dashboard-page', className: 'team-page dash-page', hidden: true, dataset: { testid: 'dashboard-page' }, attrs: { 'aria-labelledby': 'dash-title' } },
    h('header', { className: 'team-page-head' }, back, h('h1', { id: 'dash-title', className: 'team-title', tabIndex: -1 }, 'Dashboard')),
    h('label', { className: 'team-field dash-team' }, h('span', {}, 'Team'), teamSelect),
    status,
    h('section', { className: 'dash-card dash-urgent', attrs: { 'aria-labelledby': 'dash-handover-title' } },
      h('h2', { id: 'dash-handover-title' }, icon('hourglass'), ' Waiting for a person'),
      handoverList,
      handoverEmpty),
    h('div', { className: 'dash-tiles' }, Object.values(tiles).map((t) => t.el)),
    h('div', { className: 'dash-grid' }, Object.values(charts).map((c) => c.el)),
  );
  document.getElementById('app').append(page);
  signal.addEventListener('abort', () => page.remove());
  teamSelect.addEventListener('change', () => reload(), { signal });

  async function loadTeams() {
    if (teamSelect.options.length) return;
    const { teams: list } = await teams();
    const shown = workableTeams(me, list);
    teamSelect.replaceChildren(...shown.map((t) => h('option', { value: t.id }, t.name || t.slug)));
  }

  function label(stage) {
    return stageLabels.get(stage) || stage;
  }

  let shownHandovers = '';
  function drawHandovers(list) {
    // Unchanged lists stay as they are: a live reload must not swap a button out
    // from under the pointer that is about to press it.
    const key = JSON.stringify(list);
    if (key === shownHandovers) return;
    shownHandovers = key;
    handoverEmpty.hidden = list.length > 0;
    handoverList.replaceChildren(
      ...list.map((hv) => {
        const open = hv.conversation_id
          ? h('a', { href: `#/c/${encodeURIComponent(hv.conversation_id)}`, className: 'btn btn-small' }, 'Open')
          : null;
        const take = canTakeOver && hv.conversation_id
          ? h('button', { type: 'button', className: 'btn btn-small btn-primary', dataset: { testid: 'dash-take-over' } }, 'Take over')
          : null;
        if (take) {
          take.addEventListener('click', async () => {
            take.disabled = true;
            try {
              await request('POST', '/api/conversations/handover', { body: { conversation_id: hv.conversation_id, assigned_to: me.id } });
              toast('The conversation is yours.');
              navigate(`#/c/${encodeURIComponent(hv.conversation_id)}`);
            } catch (err) {
              take.disabled = false;
              toastError(err);
            }
          });
        }
        const who = hv.name || hv.phone || 'A customer';
        return h(
          'li',
          { className: 'dash-handover', dataset: { testid: 'dash-handover' } },
          h('div', { className: 'dash-handover-text' },
            h('strong', {}, who),
            h('span', { className: 'chip' }, label(hv.stage)),
            hv.interested_package ? h('span', { className: 'chip' }, hv.interested_package) : null,
            hv.notes ? h('p', {}, hv.notes) : null,
            hv.last_message ? h('p', { className: 'muted' }, `“${hv.last_message}”`) : null),
          h('div', { className: 'dash-handover-actions' }, take, open),
        );
      }),
    );
  }

  function draw(dash, stats) {
    const m = stats.conversion_metrics;
    tiles.active.value.textContent = String(dash.active_conversations);
    tiles.leads.value.textContent = String(m.total_leads);
    tiles.won.value.textContent = String(m.won);
    tiles.lost.value.textContent = String(m.lost);
    tiles.conversion.value.textContent = percent(m.conversion_rate);
    drawHandovers(dash.pending_handover || []);
    drawBars(charts.stages.host, {
      title: 'Leads by stage',
      // In the pipeline's order, not the alphabet's.
      rows: Object.entries(dash.stage_distribution || {})
        .sort(([a], [b]) => stageOrder.indexOf(a) - stageOrder.indexOf(b))
        .map(([k, n]) => ({ key: k, label: label(k), value: n, text: String(n) })),
    });
    drawBars(charts.funnel.host, {
      title: 'Share of the leads of one stage that reached the next',
      rows: (m.funnel || []).map((f) => ({
        key: `${f.from}-${f.to}`,
        label: `→ ${label(f.to)}`,
        value: f.rate,
        text: percent(f.rate),
      })),
    });
    const perf = (rows, key, name) => rows.map((r) => ({
      key: String(r[key]),
      label: name(r),
      value: r.leads,
      text: `${r.leads} · ${percent(r.conversion ?? (r.leads ? r.won / r.leads : 0))}`,
    }));
    drawBars(charts.campaigns.host, {
      title: 'Leads per campaign',
      rows: perf(stats.campaign_performance || [], 'campaign_code', (r) => r.campaign_code || 'No campaign'),
      empty: 'No campaign has brought a lead yet.',
    });
    drawBars(charts.sources.host, {
      title: 'Leads per source',
      rows: perf(stats.source_performance || [], 'source', (r) => r.source || 'Unknown'),
    });
    drawBars(charts.agents.host, {
      title: 'Leads per agent',
      rows: (stats.agent_performance || []).map((a) => ({
        key: a.agent_id,
        label: a.name || 'Someone',
        value: a.leads,
        text: `${a.won}/${a.leads} won`,
      })),
      empty: 'No lead has an owner yet.',
    });
    status.textContent = `Updated ${formatAge(new Date().toISOString())}`;
  }

  async function load() {
    const seq = ++loadSeq;
    await loadTeams();
    const team = teamSelect.value;
    if (!team) return;
    const [dash, stats, pipeline] = await Promise.all([
      request('GET', '/api/marketing/dashboard', { query: { team } }),
      request('GET', '/api/marketing/analytics', { query: { team } }),
      request('GET', `/api/teams/${encodeURIComponent(team)}/pipeline`),
    ]);
    if (seq !== loadSeq || !visible) return; // overtaken, or the page was left
    stageOrder = (pipeline.stages || []).map((s) => s.key);
    stageLabels = new Map((pipeline.stages || []).map((s) => [s.key, s.name || s.key]));
    draw(dash, stats);
  }

  /** Loads now, or once more after the load in flight (never two at a time). */
  function reload() {
    if (loading) {
      pending = true;
      return loading;
    }
    loading = load()
      .catch((err) => {
        if (err.status !== 401) toastError(err);
      })
      .finally(() => {
        loading = null;
        if (pending && visible) {
          pending = false;
          reload();
        }
      });
    return loading;
  }

  return {
    show() {
      visible = true;
      layout.hidden = true;
      page.hidden = false;
      document.getElementById('dash-title').focus();
      return reload();
    },
    hide() {
      if (!visible) return;
      visible = false;
      page.hidden = true;
      layout.hidden = false;
    },
    isVisible: () => visible,
    /** A server frame: lead, handover and conversation changes refresh the page. */
    onFrame(frame) {
      if (visible && LIVE_FRAMES.has(frame.type)) reload();
    },
  };
}
