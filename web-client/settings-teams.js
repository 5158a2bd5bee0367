/*
 * "Teams" (#/settings/teams…, issue 16): the teams with their member counts, a
 * "New team" form, and per team (#/settings/teams/{id}, beside the list, a view of
 * its own on a phone) its members with add and remove. accounts.manage may change
 * things; accounts.read alone (a manager) sees their own teams read-only — the hub
 * lists only those to them.
 */
import { h, icon } from './dom.js';
import { toastError } from './toast.js';
import { can, roleLabel } from './permissions.js';
import { explain, slugify } from './accounts-api.js';
import { sectionHead, field, select, formError, nameProblem, statusBadge } from './settings-ui.js';

export function setupTeamsSection(ctx) {
  const { accounts, me, signal } = ctx;
  const manage = can(me, 'accounts.manage');
  const data = { teams: [], agents: [], loaded: false };
  let sub = [];
  let loadSeq = 0;

  const head = sectionHead({
    title: 'Teams',
    backLabel: 'Back to settings',
    onBack: () => ctx.back('#/settings'),
    testid: 'teams-title',
  });
  head.heading.id = 'teams-heading';
  const list = h('ul', { className: 'agent-list', dataset: { testid: 'team-list' }, attrs: { 'aria-label': 'Teams' } });
  const detail = h('div', { className: 'split-detail', dataset: { testid: 'team-detail' } });
  const element = h(
    'section',
    { className: 'settings-section settings-split', dataset: { testid: 'settings-teams' }, attrs: { 'aria-labelledby': 'teams-heading' } },
    h(
      'div',
      { className: 'split-list' },
      head.root,
      manage ? null : h('p', { className: 'sf-note' }, icon('info'), h('span', {}, 'You can see who is in your teams. An admin changes membership.')),
      manage ? newTeamForm() : null,
      list,
    ),
    detail,
  );

  async function load() {
    const mine = ++loadSeq;
    const [teams, agents] = await Promise.all([accounts.teams(), accounts.agents()]);
    if (mine !== loadSeq || signal.aborted) return false;
    data.teams = teams.teams || [];
    data.agents = agents.agents || [];
    data.loaded = true;
    return true;
  }

  const members = (team) => data.agents.filter((a) => (a.team_ids || []).includes(team.id));

  async function refresh(notice) {
    const focusedId = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.testid : null;
    try {
      if (!(await load())) return;
    } catch (err) {
      if (err.status !== 401) toastError(err);
      return;
    }
    render(notice);
    if (focusedId) {
      const again = element.querySelector(`[data-testid="${focusedId}"]`);
      if (again) again.focus({ preventScroll: true });
    }
  }

  function newTeamForm() {
    const name = field({ label: 'Name', testid: 'team-new-name', hint: 'For example “Sales” or “Support EU”.' });
    const slug = field({
      label: 'Short name',
      testid: 'team-new-slug',
      hint: 'Used in the website widget (data-team). Lower-case letters, digits and dashes.',
      attrs: { spellcheck: 'false' },
    });
    let slugTouched = false;
    slug.input.addEventListener('input', () => {
      slugTouched = slug.input.value !== '';
    });
    name.input.addEventListener('input', () => {
      if (!slugTouched) slug.input.value = slugify(name.input.value);
    });
    const error = formError('team-new-error');
    const submit = h('button', { type: 'submit', className: 'btn btn-primary', dataset: { testid: 'team-new-submit' } }, icon('plus'), 'Create team');
    const form = h(
      'form',
      { className: 'settings-card', noValidate: true, dataset: { testid: 'team-new-form' }, attrs: { 'aria-label': 'New team' } },
      h('h3', { className: 'sf-card-title' }, 'New team'),
      name.root,
      slug.root,
      error.el,
      h('div', { className: 'sf-actions' }, submit),
    );
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const n = name.input.value.trim();
      const s = slug.input.value.trim() || slugify(n);
      const nameErr = nameProblem(n).replace('colleagues and customers see it', 'agents see it');
      const slugErr = /^[a-z0-9-]{1,48}$/.test(s) ? '' : 'Use up to 48 lower-case letters, digits and dashes.';
      name.setError(nameErr);
      slug.setError(slugErr);
      if (nameErr || slugErr) return;
      error.show('');
      submit.disabled = true;
      try {
        const { team } = await accounts.createTeam(n, s);
        name.input.value = '';
        slug.input.value = '';
        slugTouched = false;
        await load();
        ctx.navigate(`#/settings/teams/${encodeURIComponent(team.id)}`, { notice: `${team.name} is created. Add its members here.` });
      } catch (err) {
        if (err.status === 401) return;
        const message = explain(err);
        if (err.status === 409) slug.setError(message);
        error.show(message);
      } finally {
        submit.disabled = false;
      }
    });
    return form;
  }

  function renderList() {
    list.replaceChildren(
      ...data.teams.map((t) => {
        const href = `#/settings/teams/${encodeURIComponent(t.id)}`;
        const link = h(
          'a',
          {
            href,
            className: 'agent-link',
            dataset: { testid: 'team-link' },
            onclick: (e) => {
              e.preventDefault();
              ctx.navigate(href);
            },
          },
          t.name,
        );
        if (sub[0] === t.id) link.setAttribute('aria-current', 'true');
        const n = members(t).length;
        return h(
          'li',
          { className: 'agent-row', dataset: { testid: 'team-row', id: t.id } },
          h('div', { className: 'agent-row-main' }, link, h('span', { className: 'agent-email' }, t.slug)),
          h('div', { className: 'agent-row-meta' }, h('span', { className: 'agent-teams' }, icon('users'), `${n} member${n === 1 ? '' : 's'}`)),
        );
      }),
    );
    if (data.loaded && !data.teams.length) list.append(h('li', { className: 'empty' }, 'No team yet.'));
  }

  function renderDetail(notice) {
    const team = sub[0] && data.teams.find((t) => t.id === sub[0]);
    if (!team) {
      detail.replaceChildren(h('p', { className: 'empty split-placeholder' }, data.loaded && sub[0] ? 'There is no such team.' : 'Choose a team to see its members.'));
      return;
    }
    const th = sectionHead({ title: team.name, backLabel: 'Back to teams', onBack: () => ctx.back('#/settings/teams'), level: 'h3', testid: 'team-title' });
    const noticeEl = h('p', { className: 'sf-notice', attrs: { role: 'status' }, dataset: { testid: 'team-notice' } }, notice || '');
    noticeEl.hidden = !notice;
    const error = formError('team-member-error');
    const inTeam = members(team);
    const memberList = h(
      'ul',
      { className: 'member-list', dataset: { testid: 'team-members' }, attrs: { 'aria-label': `Members of ${team.name}` } },
      ...inTeam.map((a) => {
        let remove = null;
        if (manage) {
          remove = h(
            'button',
            { type: 'button', className: 'btn btn-small btn-danger', dataset: { testid: 'team-member-remove', agent: a.id } },
            icon('x'),
            h('span', {}, 'Remove'),
            h('span', { className: 'sr-only' }, ` ${a.name} from ${team.name}`),
          );
          remove.addEventListener('click', () => change(remove, () => accounts.removeMember(team.id, a.id), `${a.name} left ${team.name}; their open sessions ended.`));
        }
        return h(
          'li',
          { className: 'member-row', dataset: { testid: 'team-member', agent: a.id } },
          h('span', { className: 'member-name' }, a.name),
          h('span', { className: 'badge badge-accent' }, roleLabel(a.role)),
          a.active ? null : statusBadge(false),
          h('span', { className: 'spacer' }),
          remove,
        );
      }),
    );
    if (!inTeam.length) memberList.append(h('li', { className: 'sf-muted' }, 'Nobody yet.'));
    let addForm = null;
    if (manage) {
      const outside = data.agents.filter((a) => a.active && !(a.team_ids || []).includes(team.id));
      const agentSelect = select(outside.map((a) => [a.id, `${a.name} (${a.email})`]));
      const add = field({ label: 'Add a member', control: agentSelect, testid: 'team-member-add' });
      const addBtn = h('button', { type: 'submit', className: 'btn', dataset: { testid: 'team-member-add-submit' } }, icon('user-plus'), 'Add');
      addForm = h('form', { noValidate: true, className: 'sf-inline' }, add.root, addBtn);
      addForm.hidden = !outside.length;
      addForm.addEventListener('submit', (e) => {
        e.preventDefault();
        const a = outside.find((x) => x.id === agentSelect.value);
        if (a) change(addBtn, () => accounts.addMember(team.id, a.id), `${a.name} joined ${team.name}.`);
      });
    }
    async function change(button, work, done) {
      error.show('');
      button.disabled = true;
      try {
        await work();
        await refresh(done);
      } catch (err) {
        if (err.status !== 401) error.show(explain(err));
      } finally {
        button.disabled = false;
      }
    }
    detail.replaceChildren(
      h(
        'div',
        { className: 'agent-editor', dataset: { testid: 'team-editor', id: team.id } },
        th.root,
        h('p', { className: 'agent-editor-sub' }, `Short name: ${team.slug}`),
        noticeEl,
        h('section', { className: 'settings-card', attrs: { 'aria-label': 'Members' } }, h('h4', { className: 'sf-card-title' }, 'Members'), memberList, addForm, error.el),
        manage ? h('p', { className: 'sf-note' }, icon('info'), h('span', {}, 'Removing someone from a team ends their open sessions.')) : null,
      ),
    );
  }

  function render(notice) {
    renderList();
    renderDetail(notice);
  }

  async function route(parts, { notice } = {}) {
    sub = parts;
    if (!data.loaded) {
      try {
        if (!(await load())) return;
      } catch (err) {
        if (err.status !== 401) toastError(err);
        return;
      }
    }
    render(notice);
    const target = sub.length ? detail.querySelector('.settings-heading') : head.heading;
    if (target) target.focus({ preventScroll: true });
  }

  function leave() {
    data.loaded = false;
  }

  return { element, route, leave, refresh };
}
