/*
 * "Routing" affordance of the conversation view (issue 4): a button in the
 * view header that unfolds the routing history of the open conversation (who
 * was considered, who was skipped and why, GET /api/conversations/{id}/routing)
 * and lets the assignee, or anyone who may assign others' conversations
 * (conversations.assign_others), hand it back to the queue, and the latter
 * transfer it to another team (POST .../transfer; the target
 * team routes it). Resolve/reopen stays in conversation-view.js.
 * It only adds elements next to the ones conversation-view.js owns and follows
 * the open conversation through the store (store.activeId).
 */
import { h } from './dom.js';
import { timeElement } from './format.js';
import { toast, toastError } from './toast.js';
import { can } from './permissions.js';

const KIND_TEXT = {
  assigned: 'Assigned',
  offered: 'Offered',
  offer_widened: 'Offer widened',
  offer_alerted: 'Leads alerted',
  claimed: 'Claimed',
  offer_expired: 'Offer expired',
  queued: 'Queued',
  requeued: 'Back in the queue',
  unassigned: 'Unassigned',
  transferred: 'Transferred',
};
const SKIP_TEXT = {
  offline: 'offline',
  away: 'away',
  at_capacity: 'at capacity',
  off_hours: 'outside working hours',
  not_in_team: 'not in team',
  not_next: 'not next in rotation',
};


/**
 * @param {{store: import('./store.js').Store, routingApi: object, signal: AbortSignal}} opts
 */
export function setupRoutingPanel({ store, routingApi, signal }) {
  const head = document.querySelector('#view-body .view-head');
  const actions = head && head.querySelector('.view-actions');
  if (!head || !actions) return { refresh() {} };

  const list = h('ol', { className: 'routing-events', dataset: { testid: 'routing-events' } });
  const status = h('p', { className: 'routing-status', attrs: { role: 'status' } });
  const requeueBtn = h('button', { type: 'button', className: 'btn', dataset: { testid: 'routing-requeue' } }, 'Return to queue');
  const transferSelect = h('select', { dataset: { testid: 'transfer-team' }, attrs: { 'aria-label': 'Transfer to team' } });
  const transferBtn = h('button', { type: 'button', className: 'btn', dataset: { testid: 'transfer-submit' } }, 'Transfer');
  const transferForm = h(
    'div',
    { className: 'routing-transfer', hidden: true },
    h('label', {}, h('span', {}, 'Transfer to '), transferSelect),
    transferBtn,
  );
  const panel = h(
    'section',
    { id: 'routing-panel', className: 'routing-panel', dataset: { testid: 'routing-panel' }, attrs: { 'aria-label': 'Routing history' }, hidden: true },
    h('div', { className: 'routing-panel-head' }, h('h3', {}, 'Routing'), requeueBtn),
    transferForm,
    status,
    list,
  );
  const toggle = h(
    'button',
    {
      type: 'button',
      className: 'btn routing-toggle',
      dataset: { testid: 'routing-toggle' },
      attrs: { 'aria-expanded': 'false', 'aria-controls': 'routing-panel' },
    },
    'Routing',
  );
  actions.prepend(toggle);
  head.after(panel);

  let shownFor = null; // conversation id the panel shows
  let loadSeq = 0;
  let teams = null; // [{id, name}] once loaded (conversations.assign_others)

  function agentName(id) {
    return id ? store.agentName(id) : '';
  }

  function renderEvents(events) {
    list.replaceChildren(
      ...events.map((e) => {
        const from = e.kind === 'unassigned' || e.kind === 'requeued';
        const who = e.agent_id ? (from ? ` (was ${agentName(e.agent_id)})` : ` → ${agentName(e.agent_id)}`) : '';
        const by = e.actor_id && e.actor_id !== e.agent_id ? ` by ${agentName(e.actor_id)}` : '';
        const cands = (e.candidates || []).map((c) =>
          h(
            'li',
            { className: c.skipped ? 'is-skipped' : '' },
            `${agentName(c.agent_id)} (${c.presence}, ${c.open}/${c.capacity})`,
            c.skipped ? ` — ${SKIP_TEXT[c.skipped] || c.skipped}` : '',
          ),
        );
        return h(
          'li',
          { className: 'routing-event', dataset: { kind: e.kind } },
          h(
            'div',
            { className: 'routing-event-line' },
            h('strong', {}, (KIND_TEXT[e.kind] || e.kind) + who),
            by,
            e.via ? h('span', { className: 'chip' }, e.via.replace(/_/g, ' ')) : null,
            timeElement(e.created_at),
          ),
          e.note ? h('p', { className: 'routing-note' }, e.note) : null,
          cands.length ? h('ul', { className: 'routing-cands' }, cands) : null,
        );
      }),
    );
  }

  async function refresh() {
    const id = store.activeId;
    if (panel.hidden || !id) return;
    const mine = ++loadSeq;
    shownFor = id;
    status.textContent = 'Loading…';
    try {
      const { events } = await routingApi.audit(id);
      if (mine !== loadSeq) return;
      renderEvents(events || []);
      status.textContent = events && events.length ? '' : 'No routing decisions recorded yet.';
    } catch (err) {
      if (mine !== loadSeq) return;
      status.textContent = err.status === 401 ? '' : err.message;
    }
  }

  function paintRequeue() {
    const conv = store.activeId && store.conversations.get(store.activeId);
    const me = store.me;
    const allowed = Boolean(conv && conv.assignee_id && me && (conv.assignee_id === me.id || can(me, 'conversations.assign_others')));
    requeueBtn.hidden = !allowed;
  }

  /** The transfer choices: every other team (for those who may assign to others). */
  async function paintTransfer() {
    const conv = store.activeId && store.conversations.get(store.activeId);
    const me = store.me;
    const allowed = Boolean(conv && can(me, 'conversations.assign_others'));
    if (!allowed) {
      transferForm.hidden = true;
      return;
    }
    if (!teams) {
      try {
        teams = (await routingApi.teams()).teams || [];
      } catch (err) {
        if (err.status !== 401) toastError(err);
        return;
      }
    }
    const current = store.activeId && store.conversations.get(store.activeId);
    const others = teams.filter((t) => current && t.id !== current.team_id);
    transferSelect.replaceChildren(...others.map((t) => h('option', { value: t.id }, t.name)));
    transferForm.hidden = others.length === 0;
  }

  function setOpen(open) {
    panel.hidden = !open;
    toggle.setAttribute('aria-expanded', String(open));
    if (open) {
      paintRequeue();
      paintTransfer();
      refresh();
    }
  }

  toggle.addEventListener('click', () => setOpen(panel.hidden), { signal });
  requeueBtn.addEventListener(
    'click',
    async () => {
      const id = store.activeId;
      if (!id) return;
      requeueBtn.disabled = true;
      try {
        const conv = await routingApi.requeue(id);
        if (conv && conv.id) store.upsert(conv);
        refresh();
      } catch (err) {
        if (err.status !== 401) toastError(err);
      } finally {
        requeueBtn.disabled = false;
      }
    },
    { signal },
  );

  transferBtn.addEventListener(
    'click',
    async () => {
      const id = store.activeId;
      const teamId = transferSelect.value;
      if (!id || !teamId) return;
      transferBtn.disabled = true;
      try {
        const conv = await routingApi.transfer(id, teamId);
        if (conv && conv.id) store.upsert(conv);
        const name = (teams || []).find((t) => t.id === teamId);
        toast(`Transferred to ${name ? name.name : 'the team'}.`, 'info');
        paintRequeue();
        paintTransfer();
        refresh();
      } catch (err) {
        if (err.status !== 401) toastError(err);
      } finally {
        transferBtn.disabled = false;
      }
    },
    { signal },
  );

  // Another conversation opened (or closed): fold the panel away. A panel opened
  // before any conversation was (a quick click) is painted for it now, so it never
  // shows stale or empty transfer choices.
  store.on(
    'list',
    () => {
      if (store.activeId === shownFor) return;
      if (shownFor) {
        shownFor = null;
        list.replaceChildren();
        setOpen(false);
      } else if (!panel.hidden && store.activeId) {
        setOpen(true);
      }
    },
    signal,
  );
  store.on(
    'conversation',
    (id) => {
      if (id !== store.activeId || panel.hidden) return;
      const before = requeueBtn.hidden;
      paintRequeue();
      // A new assignee means a new routing decision to show.
      if (before !== requeueBtn.hidden) refresh();
    },
    signal,
  );
  signal.addEventListener('abort', () => {
    toggle.remove();
    panel.remove();
  });

  return { refresh };
}
