/*
 * "Scheduled jobs" (#/settings/jobs, docs/scheduler.md): what the hub's durable
 * scheduler will do, is doing and gave up on — the recurring working-hours tick and
 * overdue-task check, and every job features schedule — with kind, key, due time,
 * state, attempts and the last error. Filters by kind and state; a Refresh button
 * reads the list again (jobs change on their own, so the time of the last read is
 * shown). Needs audit.read (admins). API: GET /api/jobs?kind=&state=.
 */
import { h, icon } from './dom.js';
import { toastError } from './toast.js';
import { sectionHead, select } from './settings-ui.js';

const STATES = ['pending', 'running', 'done', 'failed', 'cancelled'];

/** Words and badge class for a job state. */
export function stateBadge(state) {
  const tone = { pending: 'badge-info', running: 'badge-accent', done: 'badge-success', failed: 'badge-danger', cancelled: '' }[state] ?? '';
  const words = { pending: 'Pending', running: 'Running', done: 'Done', failed: 'Failed', cancelled: 'Cancelled' }[state] || state;
  return h('span', { className: `badge ${tone}`, dataset: { testid: 'job-state' } }, words);
}

/** Friendly names of the kinds this hub knows; others show their stored name. */
const KINDS = {
  'routing.hours_tick': 'Working-hours tick',
  'leads.overdue_tasks': 'Overdue-task check',
};

/** "in 5 min", "2 h ago" — relative to the hub's clock (`now_ms` of the answer). */
export function relative(ms, now) {
  const d = ms - now;
  const a = Math.abs(d);
  const unit = a < 60_000 ? [Math.round(a / 1000), 's'] : a < 3_600_000 ? [Math.round(a / 60_000), 'min'] : a < 86_400_000 ? [Math.round(a / 3_600_000), 'h'] : [Math.round(a / 86_400_000), 'd'];
  if (a < 1000) return 'now';
  return d > 0 ? `in ${unit[0]} ${unit[1]}` : `${unit[0]} ${unit[1]} ago`;
}

function when(iso) {
  const d = new Date(iso);
  return d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'medium' });
}

export function setupJobsSection(ctx) {
  const { accounts, signal } = ctx;
  const request = accounts.request;
  const head = sectionHead({ title: 'Scheduled jobs', backLabel: 'Back to settings', onBack: () => ctx.back('#/settings'), testid: 'jobs-title' });
  head.heading.id = 'jobs-heading';
  const kind = select([['', 'All kinds'], ...Object.entries(KINDS)], '');
  kind.dataset.testid = 'jobs-kind';
  const state = select([['', 'All states'], ...STATES.map((s) => [s, s[0].toUpperCase() + s.slice(1)])], '');
  state.dataset.testid = 'jobs-state';
  const refreshBtn = h('button', { type: 'button', className: 'btn', dataset: { testid: 'jobs-refresh' }, onclick: () => refresh() }, icon('rotate-ccw'), 'Refresh');
  const read = h('p', { className: 'sf-muted sj-read', attrs: { 'aria-live': 'polite' }, dataset: { testid: 'jobs-read' } });
  const list = h('ul', { className: 'sj-list', dataset: { testid: 'job-list' }, attrs: { 'aria-label': 'Scheduled jobs' } });
  kind.addEventListener('change', () => refresh());
  state.addEventListener('change', () => refresh());
  const element = h(
    'section',
    { className: 'settings-section', dataset: { testid: 'settings-jobs' }, attrs: { 'aria-labelledby': 'jobs-heading' } },
    head.root,
    h('p', { className: 'sf-note' }, icon('info'), h('span', {}, 'Work the hub does later or on a schedule. Any node runs a job when it is due; a failed attempt is retried with a growing pause, and a job that keeps failing stops with its error shown here.')),
    h(
      'div',
      { className: 'sf-filters sj-filters', attrs: { role: 'search' } },
      h('label', { className: 'sf-filter' }, h('span', {}, 'Kind'), kind),
      h('label', { className: 'sf-filter' }, h('span', {}, 'State'), state),
      refreshBtn,
    ),
    read,
    list,
  );

  function row(j, now) {
    const due = j.state === 'pending' || j.state === 'running' ? `Due ${relative(j.due_at_ms, now)}` : `Was due ${relative(j.due_at_ms, now)}`;
    return h(
      'li',
      { className: `settings-card sj-row${j.state === 'failed' ? ' needs-attention' : ''}`, dataset: { testid: 'job-row', kind: j.kind, key: j.key } },
      h('div', { className: 'sj-title' }, h('strong', {}, KINDS[j.kind] || j.kind), stateBadge(j.state)),
      h('p', { className: 'agent-row-meta sj-meta' }, h('code', { dataset: { testid: 'job-key' } }, j.kind), ' · key ', h('code', {}, j.key)),
      h(
        'p',
        { className: 'agent-row-meta' },
        icon('clock'),
        h('span', { attrs: { title: when(j.due_at) }, dataset: { testid: 'job-due' } }, `${due} (${when(j.due_at)})`),
        ' · ',
        h('span', { dataset: { testid: 'job-attempts' } }, `${j.attempts} ${j.attempts === 1 ? 'attempt' : 'attempts'}`),
      ),
      j.last_error ? h('p', { className: 'sj-error', dataset: { testid: 'job-error' } }, icon('triangle-alert'), h('span', {}, j.last_error)) : null,
    );
  }

  async function refresh() {
    const q = new URLSearchParams();
    if (kind.value) q.set('kind', kind.value);
    if (state.value) q.set('state', state.value);
    refreshBtn.disabled = true;
    try {
      const body = await request('GET', `/api/jobs${q.size ? `?${q}` : ''}`);
      if (signal.aborted) return;
      const jobs = body.jobs || [];
      list.replaceChildren(...(jobs.length ? jobs.map((j) => row(j, body.now_ms)) : [h('li', { className: 'sf-muted', dataset: { testid: 'jobs-empty' } }, 'No jobs match.')]));
      read.textContent = `${jobs.length} ${jobs.length === 1 ? 'job' : 'jobs'} · read at ${new Date(body.now_ms).toLocaleTimeString()}`;
    } catch (err) {
      if (err.status !== 401) toastError(err);
    } finally {
      refreshBtn.disabled = false;
    }
  }

  return {
    element,
    route() {
      refresh();
      head.heading.focus({ preventScroll: true });
    },
    leave() {},
  };
}
