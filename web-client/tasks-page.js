/*
 * The Tasks page (#/tasks, issue 16, docs/leads-screens.md) for agents with
 * leads.read: "My tasks" (assigned to me) or "Team tasks" (every task of my teams),
 * open ones only, overdue first — marked with a word and an icon, not only a
 * colour — then by due time; each with its lead's link and a box to tick it done
 * (leads.edit). GET /api/tasks?assignee=me|…&status=open, PATCH /api/tasks/{id}.
 *
 * Mounted like audit.js: a page that replaces the inbox layout while the hash is
 * #/tasks.
 */
import { h, icon } from './dom.js';
import { formatFull, formatWhen } from './format.js';
import { toastError } from './toast.js';
import { can } from './permissions.js';
import { isOverdue, leadName, orderTasks } from './leads-data.js';

const enc = encodeURIComponent;

/**
 * @param {{request: Function, data: object, signal: AbortSignal}} opts
 */
export function setupTasksPage({ request, data, signal }) {
  const layout = document.querySelector('.layout');
  const editable = can(data.me, 'leads.edit');
  let visible = false;
  let scope = 'mine';
  let seq = 0;
  const leadNames = new Map(); // lead id -> name, for the links

  const tabs = [
    ['mine', 'My tasks'],
    ['team', 'Team tasks'],
  ].map(([value, text]) =>
    h('button', { type: 'button', className: 'filter', dataset: { scope: value, testid: `tasks-${value}` }, onclick: () => setScope(value) }, text),
  );
  const list = h('ul', { className: 'task-list tasks-page-list', dataset: { testid: 'tasks-list' }, attrs: { 'aria-label': 'Open tasks, overdue first' } });
  const empty = h('p', { className: 'empty', hidden: true }, 'No open tasks.');
  const status = h('p', { className: 'sr-only', attrs: { role: 'status' } });
  const back = h('a', { href: '#/', className: 'btn btn-ghost' }, icon('arrow-left'), 'Inbox');
  const page = h(
    'main',
    { id: 'tasks-page', className: 'team-page tasks-page', hidden: true, dataset: { testid: 'tasks-page' }, attrs: { 'aria-labelledby': 'tasks-title' } },
    h('header', { className: 'team-page-head' }, back, h('h1', { id: 'tasks-title', className: 'team-title', tabIndex: -1 }, 'Tasks')),
    h('div', { className: 'filters tasks-tabs', attrs: { role: 'group', 'aria-label': 'Whose tasks' } }, tabs),
    status,
    list,
    empty,
  );
  document.getElementById('app').append(page);
  signal.addEventListener('abort', () => page.remove());

  function setScope(value) {
    scope = value;
    load();
  }

  function item(t) {
    const overdue = isOverdue(t);
    const box = h('input', {
      type: 'checkbox',
      disabled: !editable,
      attrs: { 'aria-label': `Done: ${t.title}` },
      onchange: () => complete(t, box),
    });
    return h(
      'li',
      { className: `task-item${overdue ? ' is-overdue' : ''}`, dataset: { testid: 'task-row', task: t.id, overdue: String(overdue) } },
      box,
      h('span', { className: 'task-title' }, t.title),
      overdue ? h('span', { className: 'chip badge-danger task-overdue' }, icon('triangle-alert'), 'Overdue') : null,
      h('span', { className: 'task-due', title: formatFull(t.due_at) }, `Due ${formatWhen(t.due_at)}`),
      scope === 'team' ? h('span', { className: 'task-who' }, t.assignee_id ? data.agentName(t.assignee_id) : 'Nobody') : null,
      h('a', { href: `#/leads/${enc(t.lead_id)}`, className: 'task-lead' }, icon('kanban'), leadNames.get(t.lead_id) || 'Open the lead'),
    );
  }

  async function load() {
    const mine = ++seq;
    for (const b of tabs) b.setAttribute('aria-pressed', String(b.dataset.scope === scope));
    try {
      await data.load();
      const query = { status: 'open', assignee: scope === 'mine' ? 'me' : undefined };
      const [result, known] = await Promise.all([
        request('GET', '/api/tasks', { query }),
        request('GET', '/api/leads', { query: { limit: 500 } }),
      ]);
      for (const l of known.leads || []) leadNames.set(l.id, leadName(l));
      if (mine !== seq || signal.aborted) return;
      const tasks = orderTasks(result.tasks || []);
      list.replaceChildren(...tasks.map(item));
      empty.hidden = tasks.length > 0;
      const late = tasks.filter((t) => isOverdue(t)).length;
      status.textContent = `${tasks.length} open ${tasks.length === 1 ? 'task' : 'tasks'}, ${late} overdue.`;
    } catch (err) {
      if (mine === seq && err.status !== 401) toastError(err);
    }
  }

  async function complete(t, box) {
    box.disabled = true;
    try {
      await request('PATCH', `/api/tasks/${enc(t.id)}`, { body: { status: 'done' } });
      load();
    } catch (err) {
      box.checked = false;
      box.disabled = false;
      if (err.status !== 401) toastError(err);
    }
  }

  function show(backHref = '#/') {
    back.href = backHref;
    const first = !visible;
    visible = true;
    page.hidden = false;
    layout.hidden = true;
    load();
    if (first) document.getElementById('tasks-title').focus({ preventScroll: true });
  }

  function hide() {
    if (!visible) return;
    visible = false;
    page.hidden = true;
    layout.hidden = false;
  }

  /** `lead`/`task_due` frames: the list may have changed. */
  function onFrame() {
    if (visible) load();
  }

  return { show, hide, onFrame, isVisible: () => visible };
}
