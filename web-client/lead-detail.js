/*
 * One lead's page (#/leads/{id}, part of leads-page.js; docs/leads-screens.md):
 * its contact and facts, the stage and owner (selects for agents with leads.edit:
 * a stage change here is a manual one, like a move on the board), priority, the
 * link to its conversation, its tasks (add one, tick one done) and its timeline,
 * newest first. Read-only without leads.edit. Refreshed by `lead` and `timeline`
 * frames for this lead. User data goes in as text nodes only.
 */
import { h, icon } from './dom.js';
import { formatFull, formatWhen, timeElement } from './format.js';
import { toastError } from './toast.js';
import { can } from './permissions.js';
import { isOverdue, leadName, orderTasks } from './leads-data.js';
import { describeEntry } from './lead-panel.js';

const enc = encodeURIComponent;
const PRIORITIES = ['low', 'normal', 'high'];

/** Epoch ms from a `datetime-local` value (the browser's own time zone). */
function fromLocalInput(value) {
  const t = new Date(value).getTime();
  return Number.isNaN(t) ? undefined : t;
}

/**
 * @param {{request: Function, data: object, signal: AbortSignal}} opts
 */
export function setupLeadDetail({ request, data, signal }) {
  const editable = can(data.me, 'leads.edit');
  const el = h('div', { className: 'lead-detail', hidden: true, dataset: { testid: 'lead-detail' } });
  let lead = null;
  let stages = [];
  let tasks = [];
  let timeline = [];
  let seq = 0;

  async function show(id) {
    const mine = ++seq;
    el.hidden = false;
    if (!lead || lead.id !== id) {
      lead = null;
      el.replaceChildren(h('p', { className: 'muted' }, 'Loading…'));
    }
    try {
      await data.load();
      const l = await request('GET', `/api/leads/${enc(id)}`);
      if (mine !== seq) return;
      await adopt(l, mine);
    } catch (err) {
      if (mine !== seq) return;
      el.replaceChildren(h('p', { className: 'empty' }, err.status === 404 ? 'This lead does not exist.' : 'The lead could not be loaded.'));
      if (err.status !== 404 && err.status !== 401) toastError(err);
    }
  }

  async function adopt(l, mine = seq) {
    const [st, t, tl] = await Promise.all([
      data.stages(l.team_id),
      request('GET', `/api/leads/${enc(l.id)}/tasks`),
      request('GET', `/api/leads/${enc(l.id)}/timeline`),
    ]);
    if (mine !== seq || signal.aborted) return;
    lead = l;
    stages = st;
    tasks = t.tasks || [];
    timeline = tl.timeline || [];
    render();
  }

  function hide() {
    seq++;
    el.hidden = true;
  }

  async function patch(body) {
    try {
      const l = await request('PATCH', `/api/leads/${enc(lead.id)}`, { body });
      await adopt(l);
    } catch (err) {
      if (err.status !== 401) toastError(err);
      render();
    }
  }

  function select(label, testid, options, value, onchange) {
    const s = h('select', { dataset: { testid }, disabled: !editable, onchange: () => onchange(s.value) },
      options.map(([v, text]) => h('option', { value: v, selected: v === value }, text)));
    return h('label', { className: 'team-field' }, h('span', {}, label), s);
  }

  function facts() {
    const c = (lead.contacts || [])[0] || {};
    const conv = (lead.conversation_ids || []).at(-1);
    return h('dl', { className: 'lead-facts lead-detail-facts' },
      c.email ? [h('dt', {}, 'Email'), h('dd', {}, c.email)] : null,
      c.phone ? [h('dt', {}, 'Phone'), h('dd', {}, c.phone)] : null,
      h('dt', {}, 'Source'), h('dd', {}, [lead.source, lead.source_detail].filter(Boolean).join(' · ')),
      lead.campaign_code ? [h('dt', {}, 'Campaign'), h('dd', {}, lead.campaign_code)] : null,
      lead.interested_package ? [h('dt', {}, 'Package'), h('dd', {}, lead.interested_package)] : null,
      h('dt', {}, 'Score'), h('dd', {}, String(lead.score)),
      h('dt', {}, 'Created'), h('dd', {}, timeElement(lead.created_at)),
      h('dt', {}, 'Last activity'), h('dd', {}, timeElement(lead.updated_at)),
      conv ? [h('dt', {}, 'Conversation'), h('dd', {}, h('a', { href: `#/c/${enc(conv)}`, dataset: { testid: 'lead-conversation' } }, icon('message-circle'), ' Open the conversation'))] : null,
    );
  }

  function taskItem(t) {
    const overdue = isOverdue(t);
    const box = h('input', {
      type: 'checkbox',
      checked: t.status !== 'open',
      disabled: !editable || t.status !== 'open',
      attrs: { 'aria-label': `Done: ${t.title}` },
      onchange: () => complete(t),
    });
    return h('li', { className: `task-item${overdue ? ' is-overdue' : ''}`, dataset: { testid: 'lead-task', status: t.status } },
      box,
      h('span', { className: 'task-title' }, t.title),
      overdue ? h('span', { className: 'chip badge-danger task-overdue' }, icon('triangle-alert'), 'Overdue') : null,
      h('span', { className: 'task-due', title: formatFull(t.due_at) }, t.status === 'open' ? `Due ${formatWhen(t.due_at)}` : 'Done'),
    );
  }

  function addTaskForm() {
    const titleInput = h('input', { type: 'text', required: true, maxLength: 200, dataset: { testid: 'task-title' } });
    const dueInput = h('input', { type: 'datetime-local', dataset: { testid: 'task-due' } });
    const form = h('form', { className: 'team-fields task-add', attrs: { 'aria-label': 'Add a task' } },
      h('label', { className: 'team-field' }, h('span', {}, 'New task'), titleInput),
      h('label', { className: 'team-field' }, h('span', {}, 'Due (default: in a day)'), dueInput),
      h('div', { className: 'leads-toggle' }, h('button', { type: 'submit', className: 'btn btn-primary btn-small', dataset: { testid: 'task-add' } }, icon('plus'), 'Add task')),
    );
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const title = titleInput.value.trim();
      if (!title) return titleInput.focus();
      try {
        await request('POST', `/api/leads/${enc(lead.id)}/tasks`, { body: { title, due_at: fromLocalInput(dueInput.value) } });
        await adopt(lead);
      } catch (err) {
        if (err.status !== 401) toastError(err);
      }
      return undefined;
    });
    return form;
  }

  function render() {
    if (!lead) return;
    const stageOptions = stages.map((s) => [s.key, s.name]);
    if (!stages.some((s) => s.key === lead.stage)) stageOptions.push([lead.stage, lead.stage]);
    const owners = [['', 'No owner'], ...data.members(lead.team_id).map((a) => [a.id, a.name])];
    if (lead.owner_id && !owners.some(([id]) => id === lead.owner_id)) owners.push([lead.owner_id, data.agentName(lead.owner_id)]);
    const ordered = orderTasks(tasks);
    // replaceChildren would turn a null into the text "null": drop absent parts.
    const parts = [
      h('h2', { className: 'lead-detail-name', dataset: { testid: 'lead-detail-name' } }, leadName(lead)),
      lead.handover_pending ? h('p', { className: 'lead-handover' }, 'Waiting for a human: ', lead.handover_reason || '') : null,
      h('div', { className: 'team-fields lead-detail-edit' },
        select('Stage', 'lead-detail-stage', stageOptions, lead.stage, (stage) => patch({ stage })),
        select('Owner', 'lead-detail-owner', owners, lead.owner_id || '', (o) => patch({ owner_id: o || null })),
        select('Priority', 'lead-detail-priority', PRIORITIES.map((p) => [p, p]), lead.priority, (priority) => patch({ priority })),
      ),
      facts(),
      h('section', { className: 'lead-detail-section', attrs: { 'aria-labelledby': 'lead-tasks-title' } },
        h('h3', { id: 'lead-tasks-title' }, 'Tasks'),
        editable ? addTaskForm() : null,
        ordered.length ? h('ul', { className: 'task-list', dataset: { testid: 'lead-detail-tasks' } }, ordered.map(taskItem)) : h('p', { className: 'muted' }, 'No tasks.'),
      ),
      h('section', { className: 'lead-detail-section', attrs: { 'aria-labelledby': 'lead-timeline-title' } },
        h('h3', { id: 'lead-timeline-title' }, 'Timeline'),
        h('ol', { className: 'lead-timeline', dataset: { testid: 'lead-detail-timeline' } },
          [...timeline].reverse().map((e) => h('li', { className: `tl tl-${e.kind}` }, timeElement(e.at_ms), ' ', describeEntry(e)))),
      ),
    ];
    el.replaceChildren(...parts.filter(Boolean));
  }

  async function complete(t) {
    try {
      await request('PATCH', `/api/tasks/${enc(t.id)}`, { body: { status: 'done' } });
      await adopt(lead);
    } catch (err) {
      if (err.status !== 401) toastError(err);
      render();
    }
  }

  function onFrame(f) {
    if (!lead) return;
    if (f.type === 'lead' && f.id === lead.id) adopt(f).catch(() => {});
    else if (f.type === 'timeline' && f.lead_id === lead.id && !timeline.some((e) => e.id === f.id)) {
      timeline.push(f);
      render();
    }
  }

  return { show, hide, onFrame, element: el };
}
