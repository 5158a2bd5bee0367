/*
 * Building blocks the settings screens share (settings-*.js): a section's head
 * with its back button (shown on a phone, where each screen is a stacked view),
 * labelled form fields that carry their own error message, a form-level error,
 * and the confirm dialog. Kept apart so every screen labels, validates and
 * confirms the same way.
 */
import { h, icon } from './dom.js';
import { roleLabel } from './permissions.js';

let uid = 0;
const nextId = (prefix) => `${prefix}-${++uid}`;

/**
 * The head of a settings view: back button (phone only, by CSS), a focusable
 * heading, optional actions on the right.
 */
export function sectionHead({ title, backLabel, onBack, actions = [], level = 'h2', testid }) {
  const heading = h(level, { className: 'settings-heading', tabIndex: -1, dataset: testid ? { testid } : undefined }, title);
  const backBtn = h(
    'button',
    { type: 'button', className: 'btn btn-ghost btn-icon settings-up', dataset: { testid: 'settings-up' }, onclick: onBack },
    icon('arrow-left'),
    h('span', { className: 'sr-only' }, backLabel),
  );
  const root = h('header', { className: 'settings-head' }, backBtn, heading, h('span', { className: 'spacer' }), ...actions);
  return { root, heading, backBtn };
}

/**
 * A labelled input with a hint and an error line, both tied to it with
 * aria-describedby. `control` may be given (a select); else an <input>.
 */
export function field({ label, type = 'text', name, value = '', hint, testid, autocomplete, control, attrs = {}, required }) {
  const id = nextId('sf');
  const hintId = hint ? `${id}-hint` : null;
  const errorId = `${id}-error`;
  const input =
    control ||
    h('input', {
      type,
      name: name || '',
      value,
      autocomplete: autocomplete || 'off',
      attrs: { ...attrs, ...(required ? { 'aria-required': 'true' } : {}) },
    });
  input.id = id;
  if (testid) input.dataset.testid = testid;
  input.setAttribute('aria-describedby', [hintId, errorId].filter(Boolean).join(' '));
  const hintEl = hint ? h('small', { id: hintId, className: 'sf-hint' }, hint) : null;
  const errorEl = h('p', { id: errorId, className: 'sf-error', hidden: true });
  const root = h('div', { className: 'sf-field' }, h('label', { htmlFor: id }, label), input, hintEl, errorEl);
  return {
    root,
    input,
    hintEl,
    setError(message) {
      errorEl.textContent = message || '';
      errorEl.hidden = !message;
      if (message) input.setAttribute('aria-invalid', 'true');
      else input.removeAttribute('aria-invalid');
    },
  };
}

/** A select of `[value, label]` options. */
export function select(options, value) {
  const el = h('select', {}, ...options.map(([v, label]) => h('option', { value: v }, label)));
  if (value !== undefined) el.value = value;
  return el;
}

/** The error line of a whole form (announced as it appears). */
export function formError(testid) {
  const el = h('p', { className: 'form-error', attrs: { role: 'alert' }, hidden: true, dataset: testid ? { testid } : undefined });
  return {
    el,
    show(message) {
      el.textContent = message || '';
      el.hidden = !message;
    },
  };
}

/** A quiet confirmation next to a form's button, read out by screen readers. */
export function savedNote(testid) {
  const el = h('span', { className: 'sf-saved', attrs: { role: 'status' }, dataset: testid ? { testid } : undefined });
  return {
    el,
    show(message) {
      el.textContent = message || '';
    },
  };
}

/** Checks a plausible email the way the hub does (one @, a dot after it, no spaces). */
export function emailProblem(email) {
  const e = email.trim();
  if (!e) return 'Enter the email they sign in with.';
  const at = e.indexOf('@');
  const ok = at > 0 && at === e.lastIndexOf('@') && !/\s/.test(e) && e.slice(at + 1).includes('.') && e.length <= 254;
  return ok ? '' : 'This does not look like an email address (name@example.com).';
}

export function nameProblem(name) {
  const n = name.trim();
  if (!n) return 'Enter a name: colleagues and customers see it.';
  if (n.length > 100) return 'Keep the name to 100 characters or fewer.';
  return '';
}

export const MIN_PASSWORD = 8;
export function passwordProblem(password) {
  if (!password) return 'Enter a password.';
  if ([...password].length < MIN_PASSWORD) return `Use at least ${MIN_PASSWORD} characters (a few words make a good one).`;
  return '';
}

/** A random temporary password: four groups of letters and digits, easy to read out. */
export function temporaryPassword() {
  const alphabet = 'abcdefghjkmnpqrstuvwxyz23456789';
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  const chars = [...bytes].map((b) => alphabet[b % alphabet.length]);
  return [0, 4, 8, 12].map((i) => chars.slice(i, i + 4).join('')).join('-');
}

/**
 * Asks before something that cannot be taken back quietly. A modal <dialog>:
 * focus goes in and comes back, Escape cancels. Resolves to true on confirm.
 */
export function confirmDialog({ title, text, confirmLabel, danger = false, testid = 'confirm-dialog' }) {
  return new Promise((resolve) => {
    const titleId = nextId('dlg');
    const textId = `${titleId}-text`;
    const opener = document.activeElement;
    const cancel = h('button', { type: 'button', className: 'btn', dataset: { testid: `${testid}-cancel` } }, 'Cancel');
    const ok = h(
      'button',
      { type: 'button', className: `btn ${danger ? 'btn-danger-solid' : 'btn-primary'}`, dataset: { testid: `${testid}-confirm` } },
      confirmLabel,
    );
    const dialog = h(
      'dialog',
      { className: 'sf-dialog', dataset: { testid }, attrs: { 'aria-labelledby': titleId, 'aria-describedby': textId } },
      h('h2', { id: titleId, className: 'sf-dialog-title' }, title),
      h('p', { id: textId }, text),
      h('div', { className: 'sf-dialog-actions' }, cancel, ok),
    );
    let answer = false;
    cancel.addEventListener('click', () => dialog.close());
    ok.addEventListener('click', () => {
      answer = true;
      dialog.close();
    });
    dialog.addEventListener('close', () => {
      dialog.remove();
      if (opener && opener.isConnected) opener.focus();
      resolve(answer);
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

/** The role a select shows for an agent's role (one of `roles`, else the first). */
export function roleValue(role, roles) {
  return roles.some((r) => r.role === role) ? role : roles[0].role;
}

/** The options of a role select: `[value, word]`. */
export function roleOptions(roles) {
  return roles.map((r) => [r.role, roleLabel(r.role)]);
}

/** Active or deactivated, as a word with an icon, not only a colour. */
export function statusBadge(active) {
  return active
    ? h('span', { className: 'badge badge-success', dataset: { testid: 'agent-status' } }, icon('user-check'), 'Active')
    : h('span', { className: 'badge badge-danger', dataset: { testid: 'agent-status' } }, icon('user-x'), 'Deactivated');
}
