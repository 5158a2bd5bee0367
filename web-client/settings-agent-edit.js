/*
 * The editor of one agent (#/settings/agents/{id}, part of "Agents & roles"):
 * name and email, role (each with its one-line description and, unfolded, its
 * permissions from GET /api/roles), team membership as removable chips, capacity,
 * working hours (settings-hours.js),
 * a temporary password set by the admin, and deactivate/reactivate behind a
 * confirm dialog. Says beforehand which changes end the agent's open sessions
 * (docs/accounts.md) and shows the hub's refusals — the last-admin guard above
 * all — in plain words. Every success reloads through settings-agents.js.
 */
import { h, icon } from './dom.js';
import { roleLabel, roleDescription, permissionText } from './permissions.js';
import { explain } from './accounts-api.js';
import {
  sectionHead,
  field,
  select,
  formError,
  confirmDialog,
  emailProblem,
  nameProblem,
  passwordProblem,
  temporaryPassword,
  roleOptions,
  roleValue,
  statusBadge,
} from './settings-ui.js';
import { hoursCard } from './settings-hours.js';

function card(title, testid, ...children) {
  const id = `card-${testid}`;
  return h(
    'section',
    { className: 'settings-card', dataset: { testid }, attrs: { 'aria-labelledby': id } },
    h('h4', { id, className: 'sf-card-title' }, title),
    ...children,
  );
}

const actions = (...children) => h('div', { className: 'sf-actions' }, ...children);
const note = (text) => h('p', { className: 'sf-note' }, icon('info'), h('span', {}, text));

/** Runs `work` with `button` disabled; shows the hub's refusal in `error`. */
async function attempt(button, error, agentName, work) {
  error.show('');
  button.disabled = true;
  try {
    await work();
  } catch (err) {
    if (err.status !== 401) error.show(explain(err, agentName));
  } finally {
    button.disabled = false;
  }
}

/**
 * @param {{ctx: object, agent: object, data: object, notice?: string,
 *          refresh: (notice?: string) => Promise<void>}} opts
 */
export function renderAgentEditor({ ctx, agent, data, notice, refresh }) {
  const { accounts, me } = ctx;
  const isMe = me && me.id === agent.id;
  const head = sectionHead({
    title: agent.name,
    backLabel: 'Back to agents',
    onBack: () => ctx.back('#/settings/agents'),
    actions: [statusBadge(agent.active)],
    level: 'h3',
    testid: 'agent-title',
  });
  const noticeEl = h('p', { className: 'sf-notice', attrs: { role: 'status' }, dataset: { testid: 'agent-notice' } }, notice || '');
  noticeEl.hidden = !notice;

  return h(
    'div',
    { className: 'agent-editor', dataset: { testid: 'agent-editor', id: agent.id } },
    head.root,
    h('p', { className: 'agent-editor-sub' }, agent.email),
    noticeEl,
    isMe ? note('This is you. Changing your own role or deactivating yourself signs you out.') : null,
    profileCard(),
    roleCard(),
    teamsCard(),
    capacityCard(),
    hoursCard({ accounts, agent, card, attempt, refresh }),
    passwordCard(),
    accessCard(),
  );

  function profileCard() {
    const name = field({ label: 'Name', value: agent.name, testid: 'edit-name' });
    const email = field({ label: 'Email', type: 'email', value: agent.email, testid: 'edit-email', hint: 'They sign in with it; changing it keeps them signed in.' });
    const error = formError('edit-profile-error');
    const save = h('button', { type: 'submit', className: 'btn btn-primary', dataset: { testid: 'edit-profile-save' } }, 'Save');
    const form = h('form', { noValidate: true }, name.root, email.root, error.el, actions(save));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const patch = {};
      const n = name.input.value.trim();
      const m = email.input.value.trim();
      name.setError(nameProblem(n));
      email.setError(emailProblem(m));
      if (nameProblem(n) || emailProblem(m)) return;
      if (n !== agent.name) patch.name = n;
      if (m.toLowerCase() !== agent.email) patch.email = m;
      if (!Object.keys(patch).length) {
        error.show('Nothing changed.');
        return;
      }
      attempt(save, error, agent.name, async () => {
        await accounts.updateAgent(agent.id, patch);
        await refresh('Name and email saved.');
      });
    });
    return card('Profile', 'agent-profile', form);
  }

  function roleCard() {
    const current = roleValue(agent.role, data.roles);
    const roleSelect = select(roleOptions(data.roles), current);
    const role = field({ label: 'Role', control: roleSelect, testid: 'edit-role', hint: roleDescription(current) });
    const perms = h('ul', { className: 'sf-perms', dataset: { testid: 'role-permissions' } });
    const summary = h('summary', {}, '');
    const details = h('details', { className: 'sf-details' }, summary, perms);
    function paintPermissions() {
      const chosen = data.roles.find((r) => r.role === roleSelect.value);
      role.hintEl.textContent = roleDescription(roleSelect.value);
      summary.textContent = `What a ${roleLabel(roleSelect.value)} can do`;
      const list = chosen && chosen.permissions;
      details.hidden = !Array.isArray(list);
      if (Array.isArray(list)) perms.replaceChildren(...list.map((p) => h('li', { dataset: { permission: p } }, permissionText(p))));
    }
    roleSelect.addEventListener('change', paintPermissions);
    paintPermissions();
    const error = formError('edit-role-error');
    const save = h('button', { type: 'submit', className: 'btn btn-primary', dataset: { testid: 'edit-role-save' } }, icon('shield'), 'Change role');
    const form = h(
      'form',
      { noValidate: true },
      role.root,
      details,
      note('Changing the role ends their open sessions at once; they sign in again with the new role.'),
      error.el,
      actions(save),
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      if (roleSelect.value === current) {
        error.show(`${agent.name} already has this role.`);
        return;
      }
      attempt(save, error, agent.name, async () => {
        await accounts.updateAgent(agent.id, { role: roleSelect.value });
        await refresh(`${agent.name} is now ${roleLabel(roleSelect.value)}. Their open sessions ended.`);
      });
    });
    return card('Role', 'agent-role-card', form);
  }

  function teamsCard() {
    const error = formError('edit-teams-error');
    const mine = data.teams.filter((t) => (agent.team_ids || []).includes(t.id));
    const others = data.teams.filter((t) => !(agent.team_ids || []).includes(t.id));
    const chips = h(
      'ul',
      { className: 'sf-chips', dataset: { testid: 'agent-team-chips' }, attrs: { 'aria-label': 'Member of' } },
      ...mine.map((t) => {
        const remove = h(
          'button',
          { type: 'button', className: 'chip-remove', dataset: { testid: 'team-chip-remove', team: t.id }, attrs: { 'aria-label': `Remove from ${t.name}` } },
          icon('x'),
        );
        remove.addEventListener('click', () =>
          attempt(remove, error, agent.name, async () => {
            await accounts.removeMember(t.id, agent.id);
            await refresh(`Removed from ${t.name}. Their open sessions ended.`);
          }),
        );
        return h('li', { className: 'chip chip-team', dataset: { testid: 'team-chip', team: t.id } }, h('span', {}, t.name), remove);
      }),
    );
    if (!mine.length) chips.append(h('li', { className: 'sf-muted' }, 'In no team: gets no conversations.'));
    const teamSelect = select(others.map((t) => [t.id, t.name]));
    const add = field({ label: 'Add to team', control: teamSelect, testid: 'edit-team-add' });
    const addBtn = h('button', { type: 'submit', className: 'btn', dataset: { testid: 'edit-team-add-submit' } }, icon('plus'), 'Add');
    const form = h('form', { noValidate: true, className: 'sf-inline' }, add.root, addBtn);
    form.hidden = !others.length;
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const team = others.find((t) => t.id === teamSelect.value);
      if (!team) return;
      attempt(addBtn, error, agent.name, async () => {
        await accounts.addMember(team.id, agent.id);
        await refresh(`Added to ${team.name}.`);
      });
    });
    return card('Teams', 'agent-teams-card', chips, form, note('Removing someone from a team ends their open sessions.'), error.el);
  }

  function capacityCard() {
    const now = data.capacity.get(agent.id);
    const cap = field({
      label: 'Capacity',
      type: 'number',
      testid: 'edit-capacity',
      hint: `Most conversations at once.${now ? ` Now ${now}.` : ''} Leave empty for the team's default.`,
      attrs: { min: '1', max: '1000', step: '1', inputmode: 'numeric' },
    });
    const error = formError('edit-capacity-error');
    const save = h('button', { type: 'submit', className: 'btn', dataset: { testid: 'edit-capacity-save' } }, 'Save capacity');
    const form = h('form', { noValidate: true }, cap.root, error.el, actions(save));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const raw = cap.input.value.trim();
      const n = raw === '' ? null : Number(raw);
      if (n !== null && !(Number.isInteger(n) && n >= 1 && n <= 1000)) {
        cap.setError('Enter a whole number from 1 to 1000, or leave it empty.');
        return;
      }
      cap.setError('');
      attempt(save, error, agent.name, async () => {
        await accounts.setCapacity(agent.id, n);
        await refresh(n === null ? 'Capacity follows the team default.' : `Capacity set to ${n}.`);
      });
    });
    return card('Capacity', 'agent-capacity-card', form);
  }

  function passwordCard() {
    const pw = field({
      label: 'Temporary password',
      testid: 'edit-password',
      hint: 'At least 8 characters. Tell them in person or by phone.',
      attrs: { spellcheck: 'false' },
    });
    const make = h('button', { type: 'button', className: 'btn btn-small', dataset: { testid: 'edit-password-generate' } }, icon('key-round'), 'Make one up');
    make.addEventListener('click', () => {
      pw.input.value = temporaryPassword();
      pw.setError('');
    });
    pw.root.append(make);
    const error = formError('edit-password-error');
    const save = h('button', { type: 'submit', className: 'btn', dataset: { testid: 'edit-password-save' } }, 'Reset password');
    const form = h(
      'form',
      { noValidate: true },
      pw.root,
      note('Their open sessions end at once; they sign in with this password.'),
      error.el,
      actions(save),
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const problem = passwordProblem(pw.input.value);
      pw.setError(problem);
      if (problem) return;
      attempt(save, error, agent.name, async () => {
        await accounts.resetPassword(agent.id, pw.input.value);
        await refresh(`Password reset. ${agent.name} signs in with the temporary password.`);
      });
    });
    return card('Reset password', 'agent-password-card', form);
  }

  function accessCard() {
    const error = formError('edit-access-error');
    const deactivating = agent.active;
    const btn = h(
      'button',
      {
        type: 'button',
        className: deactivating ? 'btn btn-danger' : 'btn',
        dataset: { testid: deactivating ? 'agent-deactivate' : 'agent-reactivate' },
      },
      icon(deactivating ? 'user-x' : 'user-check'),
      deactivating ? 'Deactivate' : 'Reactivate',
    );
    btn.addEventListener('click', async () => {
      const ok = await confirmDialog(
        deactivating
          ? {
              title: `Deactivate ${agent.name}?`,
              text: `${agent.name}'s open sessions end at once and they can no longer sign in. Their unanswered conversations go back to the queue. You can reactivate them later.`,
              confirmLabel: 'Deactivate',
              danger: true,
            }
          : {
              title: `Reactivate ${agent.name}?`,
              text: `${agent.name} can sign in again with their password (reset it first if they do not know it).`,
              confirmLabel: 'Reactivate',
            },
      );
      if (!ok) return;
      attempt(btn, error, agent.name, async () => {
        await accounts.updateAgent(agent.id, { active: !deactivating });
        await refresh(deactivating ? `${agent.name} is deactivated; their sessions ended.` : `${agent.name} is active again.`);
      });
    });
    const text = deactivating
      ? 'A deactivated agent cannot sign in; their open sessions end at once. Nothing they wrote is deleted.'
      : 'This account is deactivated: it cannot sign in.';
    return card('Access', 'agent-access-card', h('p', { className: 'sf-muted' }, text), error.el, actions(btn));
  }
}
