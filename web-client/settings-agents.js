/*
 * "Agents & roles" (#/settings/agents…, issue 16, needs accounts.manage): the list
 * of every agent — name, email, role in words, teams, Active/Deactivated as a word,
 * capacity — with search and role/status filters, the "Invite agent" form
 * (#/settings/agents/new) and, beside the list (a view of its own on a phone),
 * the editor of one agent (#/settings/agents/{id}, settings-agent-edit.js).
 * Owns the data both share: agents, teams, roles and capacities, reloaded after
 * every change so the list never shows what the hub no longer holds.
 */
import { h, icon } from './dom.js';
import { toastError } from './toast.js';
import { roleLabel, roleDescription } from './permissions.js';
import { explain } from './accounts-api.js';
import {
  sectionHead,
  field,
  select,
  formError,
  emailProblem,
  nameProblem,
  passwordProblem,
  temporaryPassword,
  roleOptions,
  roleValue,
  statusBadge,
} from './settings-ui.js';
import { renderAgentEditor } from './settings-agent-edit.js';

export function setupAgentsSection(ctx) {
  const { accounts, signal } = ctx;
  const data = { agents: [], teams: [], roles: [], capacity: new Map(), loaded: false };
  let sub = [];
  let loadSeq = 0;

  const search = h('input', {
    type: 'search',
    className: 'input',
    placeholder: 'Name or email',
    autocomplete: 'off',
    dataset: { testid: 'agents-search' },
  });
  const roleFilter = select([['', 'All roles']]);
  roleFilter.dataset.testid = 'agents-role-filter';
  const statusFilter = select([
    ['', 'Any status'],
    ['active', 'Active'],
    ['inactive', 'Deactivated'],
  ]);
  statusFilter.dataset.testid = 'agents-status-filter';
  const count = h('p', { className: 'sf-count', attrs: { role: 'status' } });
  const list = h('ul', { className: 'agent-list', dataset: { testid: 'agent-list' }, attrs: { 'aria-label': 'Agents' } });
  const inviteBtn = h(
    'button',
    { type: 'button', className: 'btn btn-primary', dataset: { testid: 'agent-invite' }, onclick: () => ctx.navigate('#/settings/agents/new') },
    icon('user-plus'),
    h('span', { className: 'btn-label' }, 'Invite agent'),
  );
  const head = sectionHead({
    title: 'Agents & roles',
    backLabel: 'Back to settings',
    onBack: () => ctx.back('#/settings'),
    actions: [inviteBtn],
    testid: 'agents-title',
  });
  const detail = h('div', { className: 'split-detail', dataset: { testid: 'agent-detail' } });
  const element = h(
    'section',
    { className: 'settings-section settings-split', dataset: { testid: 'settings-agents' }, attrs: { 'aria-labelledby': 'agents-heading' } },
    h(
      'div',
      { className: 'split-list' },
      head.root,
      h(
        'div',
        { className: 'sf-filters', attrs: { role: 'search' } },
        h('label', { className: 'sf-filter sf-filter-grow' }, h('span', {}, 'Search agents'), search),
        h('label', { className: 'sf-filter' }, h('span', {}, 'Role'), roleFilter),
        h('label', { className: 'sf-filter' }, h('span', {}, 'Status'), statusFilter),
      ),
      count,
      list,
    ),
    detail,
  );
  head.heading.id = 'agents-heading';

  search.addEventListener('input', renderList, { signal });
  for (const el of [roleFilter, statusFilter]) el.addEventListener('change', renderList, { signal });

  // ------------------------------------------------------------------ data

  async function load() {
    const mine = ++loadSeq;
    const [agents, teams, roles, workload] = await Promise.all([
      accounts.agents(),
      accounts.teams(),
      accounts.roles(),
      // Capacity is only in the workload view; a hub that refuses it shows none.
      accounts.workload().catch(() => ({ teams: [] })),
    ]);
    if (mine !== loadSeq || signal.aborted) return false;
    data.agents = agents.agents || [];
    data.teams = teams.teams || [];
    data.roles = roles;
    data.capacity = new Map();
    for (const t of workload.teams || []) {
      for (const a of t.agents || []) data.capacity.set(a.agent_id, a.capacity);
    }
    data.loaded = true;
    const chosen = roleFilter.value;
    roleFilter.replaceChildren(...[['', 'All roles'], ...roleOptions(data.roles)].map(([v, l]) => h('option', { value: v }, l)));
    roleFilter.value = chosen;
    return true;
  }

  /** Reloads and redraws everything, keeping the focus where it was. */
  async function refresh(notice) {
    const focusedId = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.testid : null;
    try {
      if (!(await load())) return;
    } catch (err) {
      if (err.status !== 401) toastError(err);
      return;
    }
    renderList();
    renderDetail(notice);
    if (focusedId) {
      const again = element.querySelector(`[data-testid="${focusedId}"]`);
      if (again) again.focus({ preventScroll: true });
    }
  }

  // ------------------------------------------------------------------ list

  const teamName = (id) => {
    const t = data.teams.find((x) => x.id === id);
    return t ? t.name : null;
  };

  function matches(a) {
    const q = search.value.trim().toLowerCase();
    if (q && !`${a.name} ${a.email}`.toLowerCase().includes(q)) return false;
    const role = roleFilter.value;
    if (role && roleValue(a.role, data.roles) !== role) return false;
    if (statusFilter.value === 'active' && !a.active) return false;
    if (statusFilter.value === 'inactive' && a.active) return false;
    return true;
  }

  function row(a) {
    const href = `#/settings/agents/${encodeURIComponent(a.id)}`;
    const link = h(
      'a',
      {
        href,
        className: 'agent-link',
        dataset: { testid: 'agent-link' },
        onclick: (e) => {
          e.preventDefault();
          ctx.navigate(href);
        },
      },
      a.name,
    );
    if (sub[0] === a.id) link.setAttribute('aria-current', 'true');
    const teams = (a.team_ids || []).map(teamName).filter(Boolean);
    const capacity = data.capacity.get(a.id);
    return h(
      'li',
      { className: `agent-row${a.active ? '' : ' is-inactive'}`, dataset: { testid: 'agent-row', id: a.id, role: a.role, active: String(a.active) } },
      h('div', { className: 'agent-row-main' }, link, h('span', { className: 'agent-email' }, a.email)),
      h(
        'div',
        { className: 'agent-row-meta' },
        h('span', { className: 'badge badge-accent', dataset: { testid: 'agent-role' } }, roleLabel(a.role)),
        statusBadge(a.active),
        teams.length ? h('span', { className: 'agent-teams' }, icon('users'), teams.join(', ')) : h('span', { className: 'agent-teams' }, 'No team'),
        capacity ? h('span', { className: 'agent-capacity' }, `Capacity ${capacity}`) : null,
      ),
    );
  }

  function renderList() {
    const shown = data.agents.filter(matches);
    list.replaceChildren(...shown.map(row));
    const total = data.agents.length;
    count.textContent = shown.length === total ? `${total} agent${total === 1 ? '' : 's'}` : `${shown.length} of ${total} agents`;
    if (data.loaded && !shown.length) list.append(h('li', { className: 'empty' }, 'No agent matches.'));
  }

  // ---------------------------------------------------------------- detail

  function renderDetail(notice) {
    if (sub[0] === 'new') {
      detail.replaceChildren(inviteForm());
      return;
    }
    const agent = sub[0] && data.agents.find((a) => a.id === sub[0]);
    if (!agent) {
      detail.replaceChildren(
        h('p', { className: 'empty split-placeholder' }, data.loaded && sub[0] ? 'There is no such agent.' : 'Choose an agent to edit, or invite one.'),
      );
      return;
    }
    detail.replaceChildren(renderAgentEditor({ ctx, agent, data, notice, refresh }));
  }

  function inviteForm() {
    const head = sectionHead({
      title: 'Invite agent',
      backLabel: 'Back to agents',
      onBack: () => ctx.back('#/settings/agents'),
      level: 'h3',
      testid: 'invite-title',
    });
    const name = field({ label: 'Name', autocomplete: 'off', testid: 'invite-name', required: true, hint: 'Shown to colleagues and customers.' });
    const email = field({ label: 'Email', type: 'email', testid: 'invite-email', required: true, hint: 'They sign in with it.' });
    const password = field({
      label: 'Temporary password',
      type: 'text',
      testid: 'invite-password',
      required: true,
      autocomplete: 'off',
      hint: 'At least 8 characters. Give it to them in person or by phone; they can change it under My account.',
      attrs: { spellcheck: 'false' },
    });
    const generate = h(
      'button',
      { type: 'button', className: 'btn btn-small', dataset: { testid: 'invite-generate' } },
      icon('key-round'),
      'Make one up',
    );
    generate.addEventListener('click', () => {
      password.input.value = temporaryPassword();
      password.setError('');
    });
    password.root.append(generate);
    const roleSelect = select(roleOptions(data.roles), roleValue('agent', data.roles));
    const role = field({ label: 'Role', control: roleSelect, testid: 'invite-role', hint: roleDescription('agent') });
    roleSelect.addEventListener('change', () => {
      role.hintEl.textContent = roleDescription(roleSelect.value);
    });
    const teamBoxes = data.teams.map((t) => {
      const box = h('input', { type: 'checkbox', value: t.id, dataset: { testid: 'invite-team' } });
      if (t.slug === 'default' || data.teams.length === 1) box.checked = true;
      return h('label', { className: 'sf-check' }, box, ' ', t.name);
    });
    const teams = h('fieldset', { className: 'sf-fieldset' }, h('legend', {}, 'Teams'), ...teamBoxes);
    const error = formError('invite-error');
    const submit = h('button', { type: 'submit', className: 'btn btn-primary', dataset: { testid: 'invite-submit' } }, icon('user-plus'), 'Invite');
    const cancel = h('button', { type: 'button', className: 'btn', onclick: () => ctx.back('#/settings/agents') }, 'Cancel');
    const form = h(
      'form',
      { className: 'settings-card', noValidate: true, dataset: { testid: 'invite-form' }, attrs: { 'aria-labelledby': 'invite-heading' } },
      head.root,
      name.root,
      email.root,
      password.root,
      role.root,
      teams,
      error.el,
      h('div', { className: 'sf-actions' }, submit, cancel),
    );
    head.heading.id = 'invite-heading';
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const problems = [
        [name, nameProblem(name.input.value)],
        [email, emailProblem(email.input.value)],
        [password, passwordProblem(password.input.value)],
      ];
      for (const [f, p] of problems) f.setError(p);
      const first = problems.find(([, p]) => p);
      if (first) {
        error.show('Please fix the fields marked above.');
        first[0].input.focus();
        return;
      }
      error.show('');
      submit.disabled = true;
      try {
        const { agent } = await accounts.createAgent({
          name: name.input.value.trim(),
          email: email.input.value.trim(),
          password: password.input.value,
          role: roleSelect.value,
          team_ids: teamBoxes.map((l) => l.querySelector('input')).filter((b) => b.checked).map((b) => b.value),
        });
        await load();
        renderList();
        ctx.navigate(`#/settings/agents/${encodeURIComponent(agent.id)}`, {
          notice: `${agent.name} can now sign in with ${agent.email} and the temporary password.`,
        });
      } catch (err) {
        if (err.status === 401) return;
        const message = explain(err);
        if (err.status === 409) email.setError(message);
        else if (/email/i.test(message)) email.setError(message);
        else if (/password/i.test(message)) password.setError(message);
        else if (/name/i.test(message)) name.setError(message);
        error.show(message);
      } finally {
        submit.disabled = false;
      }
    });
    return form;
  }

  // ---------------------------------------------------------------- routing

  /** Shows the list and, for `#/settings/agents/{id|new}`, the editor or form. */
  async function route(parts, { notice } = {}) {
    sub = parts;
    if (!data.loaded) {
      count.textContent = 'Loading…';
      try {
        if (!(await load())) return;
      } catch (err) {
        if (err.status !== 401) toastError(err);
        return;
      }
    }
    renderList();
    renderDetail(notice);
    const target = sub.length ? detail.querySelector('.settings-heading') : head.heading;
    if (target) target.focus({ preventScroll: true });
  }

  function leave() {
    // Fresh data next time: someone else may have changed accounts meanwhile.
    data.loaded = false;
  }

  return { element, route, leave, refresh };
}
