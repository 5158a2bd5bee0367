/*
 * Conversation list (left column): filters (All / Mine / Unassigned, and
 * channel / status / team selects), the search box, and one row per
 * conversation with contact, preview, waiting time, unread count, status,
 * channel, the lead's stage and priority (when the list payload has them) and
 * assignee. Rows are keyed by id and reused so
 * keyboard focus survives live reordering.
 */
import { can } from './permissions.js';
import { h } from './dom.js';
import { relativeTime, formatAge, toneClass } from './format.js';
import { contactName, contactBadges, originText } from './contact.js';
import { toastError } from './toast.js';

const SEARCH_DEBOUNCE_MS = 300;
const CLOCK_TICK_MS = 30000;
// The summary says which side spoke last, not who: replies are labelled by kind.
const PREVIEW_PREFIX = { agent: 'Agent: ', bot: 'Bot: ' };
const CHANNEL_TEXT = { widget: 'Web', whatsapp: 'WhatsApp', waha: 'WAHA', quick_chat: 'Quick chat' };

/**
 * @param {{store: import('./store.js').Store, api: object, onSelect: (id: string) => void, signal: AbortSignal}} opts
 */
export function setupConversationList({ store, api, onSelect, signal }) {
  const list = document.getElementById('conversation-list');
  const empty = document.getElementById('conversation-empty');
  const search = document.getElementById('conversation-search');
  const filterButtons = [...document.querySelectorAll('[data-filter]')];
  const narrowSelects = [...document.querySelectorAll('[data-narrow]')];
  const teamSelect = document.getElementById('conversation-team');
  const rows = new Map(); // id -> {li, button, parts}
  let searchTimer = 0;
  let loadSeq = 0;

  /** Fetches summaries for the current filter and query from the hub. */
  async function load() {
    const mine = ++loadSeq;
    const query = { status: 'all', limit: 100 };
    if (store.filter === 'mine') query.assignee = 'me';
    if (store.filter === 'unassigned') query.assignee = 'none';
    if (store.query) query.q = store.query;
    if (store.narrow.channel) query.channel = store.narrow.channel;
    if (store.narrow.status) query.status = store.narrow.status;
    if (store.narrow.team) query.team = store.narrow.team;
    list.setAttribute('aria-busy', 'true');
    try {
      const { conversations } = await api.conversations(query);
      if (mine !== loadSeq) return; // a newer filter or search won
      store.upsertMany(conversations);
      if (store.query) store.setQuery(store.query, conversations.map((c) => c.id));
    } catch (err) {
      if (mine === loadSeq && err.status !== 401) toastError(err);
    } finally {
      if (mine === loadSeq) list.removeAttribute('aria-busy');
    }
  }

  const pause = () => h('span', { className: 'sr-only' }, ', ');

  function makeRow(id) {
    const parts = {
      unreadWords: h('span', { className: 'sr-only' }, ' unread'),
      name: h('span', { className: 'conv-name' }),
      time: h('span', { className: 'conv-time' }),
      preview: h('span', { className: 'conv-preview' }),
      unread: h('span', { className: 'conv-unread' }),
      status: h('span', { className: 'chip' }),
      channel: h('span', { className: 'chip chip-channel', dataset: { testid: 'conv-channel' } }),
      stage: h('span', { className: 'chip chip-stage', dataset: { testid: 'conv-stage' } }),
      priority: h('span', { className: 'chip chip-priority', dataset: { testid: 'conv-priority' } }),
      assignee: h('span', { className: 'conv-assignee' }),
      badges: h('span', { className: 'conv-badges' }),
      origin: h('span', { className: 'conv-origin', dataset: { testid: 'conv-origin' } }),
    };
    const button = h(
      'button',
      { type: 'button', className: 'conv', dataset: { testid: 'conversation-item', id }, onclick: () => onSelect(id) },
      h('span', { className: 'conv-line' }, parts.name, pause(), parts.badges, pause(), parts.time),
      h('span', { className: 'conv-line' }, pause(), parts.preview, parts.unread, parts.unreadWords),
      h(
        'span',
        { className: 'conv-line conv-tags' },
        pause(),
        parts.channel,
        pause(),
        parts.status,
        pause(),
        parts.stage,
        pause(),
        parts.priority,
        pause(),
        parts.assignee,
      ),
      pause(),
      parts.origin,
    );
    const row = { li: h('li', {}, button), button, parts };
    rows.set(id, row);
    return row;
  }

  function fill(row, conv) {
    const p = row.parts;
    const name = contactName(conv.contact);
    const last = conv.last_message;
    // "Waiting" = the guest spoke last and nobody has answered yet.
    const waiting = conv.status !== 'resolved' && last && last.sender_kind === 'guest';
    const at = conv.last_message_at || conv.created_at;

    p.name.textContent = name;
    p.badges.replaceChildren(...contactBadges(conv));
    p.origin.textContent = originText(conv);
    p.origin.hidden = !p.origin.textContent;
    p.time.textContent = waiting ? `waiting ${formatAge(at)}` : relativeTime(at);
    p.time.classList.toggle('is-waiting', Boolean(waiting));
    p.preview.textContent = last ? (PREVIEW_PREFIX[last.sender_kind] || '') + last.body : 'No messages yet';
    p.unread.textContent = conv.unread > 99 ? '99+' : String(conv.unread || '');
    p.unread.hidden = !conv.unread;
    p.status.textContent = conv.status;
    p.status.className = `chip chip-${conv.status} ${toneClass(conv.status)}`;
    p.assignee.textContent = store.agentName(conv.assignee_id);
    // The coloured dot before the label (style.css) is the channel's icon.
    p.channel.textContent = CHANNEL_TEXT[conv.channel] || conv.channel || '';
    p.channel.dataset.channel = conv.channel || '';
    p.channel.title = conv.channel || '';
    p.stage.textContent = conv.lead_stage ? conv.lead_stage.replace(/_/g, ' ') : '';
    p.stage.hidden = !conv.lead_stage;
    p.priority.textContent = conv.lead_priority || '';
    p.priority.className = `chip chip-priority chip-priority-${conv.lead_priority || 'none'} ${toneClass(conv.lead_priority)}`;
    // "normal" is the default: only the exceptions earn a chip.
    p.priority.hidden = !conv.lead_priority || conv.lead_priority === 'normal';

    row.button.classList.toggle('is-unread', conv.unread > 0);
    row.button.classList.toggle('is-resolved', conv.status === 'resolved');
    if (conv.id === store.activeId) row.button.setAttribute('aria-current', 'true');
    else row.button.removeAttribute('aria-current');
    // The row's visible text is its accessible name (WCAG 2.5.3: what a voice user
    // reads out must match); sr-only commas and words make it one sentence.
    p.unreadWords.hidden = !conv.unread;
  }

  function render() {
    const visible = store.visibleConversations();
    const keep = new Set(visible.map((c) => c.id));
    for (const [id, row] of rows) {
      if (!keep.has(id)) {
        row.li.remove();
        rows.delete(id);
      }
    }
    // Only move rows that are out of place: moving a node blurs it.
    visible.forEach((conv, i) => {
      const row = rows.get(conv.id) || makeRow(conv.id);
      fill(row, conv);
      if (list.children[i] !== row.li) list.insertBefore(row.li, list.children[i] || null);
    });
    empty.hidden = visible.length > 0;
    const unread = store.totalUnread();
    document.title = unread ? `(${unread}) Switchboard` : 'Switchboard';
  }

  for (const btn of filterButtons) {
    btn.addEventListener(
      'click',
      () => {
        for (const b of filterButtons) b.setAttribute('aria-pressed', String(b === btn));
        store.setFilter(btn.dataset.filter);
        load();
      },
      { signal },
    );
  }

  for (const select of narrowSelects) {
    select.addEventListener(
      'change',
      () => {
        store.setNarrow({ [select.dataset.narrow]: select.value });
        load();
      },
      { signal },
    );
  }

  /** Fills the team select with the caller's teams; hidden with fewer than two. */
  async function loadTeams() {
    if (!teamSelect || !api.teams) return;
    try {
      const { teams } = await api.teams();
      const me = store.me || {};
      const mineOnly = !can(me, 'teams.all');
      const choices = (teams || []).filter((t) => !mineOnly || (me.team_ids || []).includes(t.id));
      teamSelect.replaceChildren(
        h('option', { value: '' }, 'All teams'),
        ...choices.map((t) => h('option', { value: t.id }, t.name)),
      );
      teamSelect.closest('label').hidden = choices.length < 2;
    } catch (err) {
      if (err.status !== 401) toastError(err);
    }
  }
  loadTeams();

  search.addEventListener(
    'input',
    () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => {
        const q = search.value.trim();
        store.setQuery(q, []);
        load();
      }, SEARCH_DEBOUNCE_MS);
    },
    { signal },
  );

  store.on('list', render, signal);
  const clock = setInterval(render, CLOCK_TICK_MS);
  signal.addEventListener('abort', () => {
    clearInterval(clock);
    clearTimeout(searchTimer);
    list.replaceChildren();
    rows.clear();
    search.value = '';
    filterButtons.forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.filter === 'all')));
    narrowSelects.forEach((sel) => {
      sel.value = '';
    });
    store.narrow = { channel: '', status: '', team: '' };
    document.title = 'Switchboard';
  });

  return { load, render };
}
