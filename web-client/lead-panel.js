/*
 * Details panel (issue 5 and 14, docs/leads.md): beside the open conversation
 * (a stacked view of its own on narrow screens, #/c/{id}/details), what is known
 * about the contact (contact.js), its tags and marketing consent (contact-tags.js,
 * passed in as contactExtra) and then the lead's
 * stage (a select that moves it by hand — manual moves may go anywhere and are
 * audited), owner, priority, campaign and handover flag, its open tasks (tick to
 * complete) and its timeline. Updated live by `lead`, `timeline` and `task_due`
 * frames. Every piece of user data is rendered with textContent (h() makes text
 * nodes), never as HTML.
 */
import { h, icon } from './dom.js';
import { toastError } from './toast.js';
import { timeElement, formatWhen, formatFull } from './format.js';
import { contactFacts } from './contact.js';

const TIMELINE_LIMIT = 60;

/** A timeline entry in words (shared with the lead page, lead-detail.js). */
export function describeEntry(e) {
  const d = e.detail || {};
  switch (e.kind) {
    case 'message_in':
    case 'message_out':
      return `${e.kind === 'message_in' ? '←' : '→'} ${d.body || ''}`;
    case 'stage_changed':
      return `Stage ${d.from} → ${d.to}${d.manual ? ' (by hand)' : ''}`;
    case 'intent_detected':
      return `Intent: ${d.intent}`;
    case 'task_created':
      return `Task: ${d.title}`;
    case 'campaign_tagged':
      return `Campaign ${d.campaign_code}`;
    case 'handover_requested':
      return `Handover requested (${d.intent})`;
    default:
      return e.kind.replace(/_/g, ' ');
  }
}

/**
 * @param {{request: Function, store: import('./store.js').Store, signal: AbortSignal,
 *          onBack: () => void, contactExtra?: {element: Node, follow: Function}}} opts
 *   request: api.js's wrapper; onBack: leave the stacked details view (narrow
 *   screens); contactExtra: shown under the contact's facts and told which
 *   conversation is open (contact-tags.js: tags and consent)
 */
export function setupLeadPanel({ request, store, signal, onBack, contactExtra = null }) {
  const host = document.getElementById('conversation-view');
  const panel = h('aside', {
    id: 'details-panel',
    className: 'lead-panel',
    tabIndex: -1,
    attrs: { 'aria-labelledby': 'details-title', 'data-testid': 'lead-panel' },
  });
  panel.hidden = true;
  host.append(panel);
  signal.addEventListener('abort', () => panel.remove());

  let conversationId = null;
  let lead = null;
  let stages = [];
  let tasks = [];
  let timeline = [];
  let loadToken = 0;

  // api.js's wrapper: the same token, ApiError (with .status) and 401 handling.
  const call = (method, path, body) => request(method, path, { body });

  const enc = encodeURIComponent;

  async function show(id) {
    conversationId = id;
    lead = null;
    tasks = [];
    timeline = [];
    const mine = ++loadToken;
    render();
    try {
      const l = await call('GET', `/api/conversations/${enc(id)}/lead`);
      if (mine !== loadToken) return;
      await adopt(l, mine);
    } catch (e) {
      if (mine !== loadToken) return;
      // 404: no lead yet (no message from the contact) — "No lead yet", no toast.
      if (e.status !== 404 && e.status !== 401) toastError(e);
    }
  }

  async function adopt(l, mine = loadToken) {
    const teamChanged = !lead || lead.team_id !== l.team_id;
    lead = l;
    const [pipeline, t, tl] = await Promise.all([
      teamChanged || !stages.length ? call('GET', `/api/teams/${enc(l.team_id)}/pipeline`) : Promise.resolve(null),
      call('GET', `/api/leads/${enc(l.id)}/tasks`),
      call('GET', `/api/leads/${enc(l.id)}/timeline`),
    ]);
    if (mine !== loadToken) return;
    if (pipeline) stages = pipeline.stages;
    tasks = t.tasks;
    timeline = tl.timeline;
    render();
  }


  function render() {
    const conv = conversationId ? store.conversations.get(conversationId) : null;
    if (contactExtra) contactExtra.follow(conv || null);
    if (!conversationId) {
      panel.hidden = true;
      panel.replaceChildren();
      return;
    }
    panel.hidden = false;
    const head = h(
      'div',
      { className: 'details-head' },
      h(
        'button',
        { type: 'button', className: 'btn btn-ghost btn-icon details-back', attrs: { 'aria-label': 'Back to the conversation' }, onclick: onBack },
        icon('arrow-left'),
      ),
      h('h2', { id: 'details-title', className: 'details-title' }, 'Details'),
    );
    const contact = h('section', { className: 'details-section', attrs: { 'aria-label': 'Contact' } },
      h('h3', {}, 'Contact'),
      h('dl', { className: 'lead-facts', dataset: { testid: 'contact-facts' } }, contactFacts(conv)),
      contactExtra ? contactExtra.element : null,
    );
    if (!lead) {
      panel.replaceChildren(head, contact, h('h3', {}, 'Lead'), h('p', { className: 'muted', dataset: { testid: 'lead-none' } }, 'No lead yet.'));
      return;
    }
    const select = h('select', {
      className: 'lead-stage',
      attrs: { 'aria-label': 'Stage', 'data-testid': 'lead-stage' },
      onchange: () => move(select.value),
    });
    for (const s of stages) {
      const opt = h('option', { value: s.key }, s.name);
      if (s.key === lead.stage) opt.selected = true;
      select.append(opt);
    }
    const facts = h('dl', { className: 'lead-facts' },
      h('dt', {}, 'Source'), h('dd', {}, [lead.source, lead.source_detail].filter(Boolean).join(' · ')),
      h('dt', {}, 'Owner'), h('dd', { dataset: { testid: 'lead-owner' } }, lead.owner_id ? store.agentName(lead.owner_id) : 'Nobody yet'),
      h('dt', {}, 'Priority'), h('dd', { className: `lead-priority lead-priority-${lead.priority}` }, lead.priority),
      h('dt', {}, 'Score'), h('dd', {}, String(lead.score)),
      lead.campaign_code ? [h('dt', {}, 'Campaign'), h('dd', {}, lead.campaign_code)] : null,
      lead.interested_package ? [h('dt', {}, 'Package'), h('dd', {}, lead.interested_package)] : null,
    );
    const open = tasks.filter((t) => t.status === 'open');
    const taskList = h('ul', { className: 'lead-tasks', attrs: { 'data-testid': 'lead-tasks' } },
      open.length ? open.map((t) => {
        const box = h('input', { type: 'checkbox', attrs: { 'aria-label': `Done: ${t.title}` }, onchange: () => complete(t) });
        return h('li', { className: t.due_at < Date.now() ? 'overdue' : '' },
          h('label', {}, box, ' ', t.title), h('span', { className: 'lead-due', title: formatFull(t.due_at) }, formatWhen(t.due_at)));
      }) : h('li', { className: 'muted' }, 'No open tasks'),
    );
    const items = timeline.slice(-TIMELINE_LIMIT).reverse().map((e) =>
      h('li', { className: `tl tl-${e.kind}` }, timeElement(e.at_ms), ' ', describeEntry(e)),
    );
    // replaceChildren would turn a null into the text "null": drop absent parts.
    const parts = [
      head,
      contact,
      h('h3', {}, 'Lead'),
      lead.handover_pending ? h('p', { className: 'lead-handover' }, 'Waiting for a human: ', lead.handover_reason || '') : null,
      h('label', { className: 'lead-stage-label' }, 'Stage ', select),
      facts,
      h('h4', {}, 'Tasks'),
      taskList,
      h('h4', {}, 'Timeline'),
      h('ol', { className: 'lead-timeline' }, items),
    ];
    panel.replaceChildren(...parts.filter(Boolean));
  }

  async function move(stage) {
    try {
      const l = await call('PATCH', `/api/leads/${enc(lead.id)}`, { stage });
      await adopt(l);
    } catch (e) {
      toastError(e);
      render();
    }
  }

  async function complete(t) {
    try {
      await call('PATCH', `/api/tasks/${enc(t.id)}`, { status: 'done' });
      await adopt(lead);
    } catch (e) {
      toastError(e);
    }
  }

  function onFrame(f) {
    switch (f.type) {
      case 'lead':
        if (lead && f.id === lead.id) adopt(f).catch(toastError);
        else if (!lead && conversationId && (f.conversation_ids || []).includes(conversationId)) adopt(f).catch(toastError);
        break;
      case 'timeline':
        if (lead && f.lead_id === lead.id && !timeline.some((e) => e.id === f.id)) {
          timeline.push(f);
          render();
        }
        break;
      case 'task_due':
        // Announced (banner, bell, desktop notification) by alerts.js; here only
        // the open lead's task list is refreshed.
        if (lead && f.lead_id === lead.id) adopt(lead).catch(toastError);
        break;
      default:
        break;
    }
  }

  // Contact facts arrive with the summary (and change with it).
  store.on('conversation', (id) => id === conversationId && render(), signal);
  store.on('list', () => conversationId && !store.activeId && hide(), signal);

  function hide() {
    conversationId = null;
    lead = null;
    loadToken++;
    render();
  }

  return { show, hide, onFrame, element: panel };
}
