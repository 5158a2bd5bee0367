/*
 * "My account" (#/settings/account, issue 16, every signed-in agent): who you are
 * (name, email, role in words) and the change of your own password
 * (POST /api/auth/password). The hub answers with a fresh token, which main.js
 * stores so this session carries on; every other session of yours ends, and the
 * form says so before and after.
 */
import { h, icon } from './dom.js';
import { roleLabel } from './permissions.js';
import { sectionHead, field, formError, passwordProblem } from './settings-ui.js';

export function setupAccountSection(ctx) {
  const { me } = ctx;
  const head = sectionHead({
    title: 'My account',
    backLabel: 'Back to settings',
    onBack: () => ctx.back('#/settings'),
    testid: 'account-title',
  });
  head.heading.id = 'account-heading';

  const facts = h(
    'dl',
    { className: 'sf-facts', dataset: { testid: 'account-facts' } },
    h('dt', {}, 'Name'),
    h('dd', {}, me.name),
    h('dt', {}, 'Email'),
    h('dd', {}, me.email),
    h('dt', {}, 'Role'),
    h('dd', {}, roleLabel(me.role)),
  );

  const current = field({ label: 'Current password', type: 'password', autocomplete: 'current-password', testid: 'account-current' });
  const next = field({
    label: 'New password',
    type: 'password',
    autocomplete: 'new-password',
    testid: 'account-new',
    hint: 'At least 8 characters. A few unrelated words make a strong one.',
  });
  const again = field({ label: 'New password again', type: 'password', autocomplete: 'new-password', testid: 'account-again' });
  const error = formError('account-error');
  const done = h('p', { className: 'sf-notice', attrs: { role: 'status' }, dataset: { testid: 'account-done' }, hidden: true });
  const submit = h('button', { type: 'submit', className: 'btn btn-primary', dataset: { testid: 'account-submit' } }, icon('key-round'), 'Change password');
  const form = h(
    'form',
    { className: 'settings-card', noValidate: true, dataset: { testid: 'account-password-form' }, attrs: { 'aria-labelledby': 'account-pw-title' } },
    h('h3', { id: 'account-pw-title', className: 'sf-card-title' }, 'Change your password'),
    // A hidden username lets password managers file the new password correctly.
    h('input', { type: 'email', value: me.email, autocomplete: 'username', hidden: true, tabIndex: -1, attrs: { 'aria-hidden': 'true' } }),
    current.root,
    next.root,
    again.root,
    h('p', { className: 'sf-note' }, icon('info'), h('span', {}, 'You stay signed in here; every other device and tab signed in as you is signed out at once.')),
    error.el,
    done,
    h('div', { className: 'sf-actions' }, submit),
  );

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    done.hidden = true;
    const problems = [
      [current, current.input.value ? '' : 'Enter your current password.'],
      [next, passwordProblem(next.input.value)],
      [again, again.input.value === next.input.value ? '' : 'The two new passwords differ.'],
    ];
    if (!problems[1][1] && next.input.value === current.input.value) problems[1][1] = 'The new password is the same as the current one.';
    for (const [f, p] of problems) f.setError(p);
    const first = problems.find(([, p]) => p);
    if (first) {
      first[0].input.focus();
      return;
    }
    error.show('');
    submit.disabled = true;
    try {
      await ctx.changeOwnPassword(current.input.value, next.input.value);
      for (const f of [current, next, again]) f.input.value = '';
      done.textContent = 'Password changed. You are still signed in here; your other sessions have ended.';
      done.hidden = false;
    } catch (err) {
      if (err.status === 401) return;
      if (/current password/i.test(err.message || '')) current.setError(err.message);
      error.show(err.status === 429 ? 'Too many wrong passwords: wait a moment, then try again.' : err.message);
    } finally {
      submit.disabled = false;
    }
  });

  const element = h(
    'section',
    { className: 'settings-section', dataset: { testid: 'settings-account' }, attrs: { 'aria-labelledby': 'account-heading' } },
    head.root,
    h('section', { className: 'settings-card', attrs: { 'aria-label': 'You' } }, facts),
    form,
  );

  return {
    element,
    route() {
      head.heading.focus({ preventScroll: true });
    },
    leave() {},
  };
}
