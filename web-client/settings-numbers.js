/*
 * "WhatsApp numbers" (#/settings/numbers, issue 17, docs/channels/whatsapp.md):
 * the hub's inboxes — Meta Cloud API phone numbers and WAHA sessions — each bound
 * to a team. Lists them with team, provider, whether webhooks are accepted, and
 * the WAHA session's status (FAILED/STOPPED stand out, with a banner above the
 * list); adds and edits them with write-only secret fields (the hub only says
 * whether a secret is set); shows the webhook addresses and the verify token to
 * paste into Meta or WAHA. Numbers from environment variables are read-only.
 * Live: `number_status` frames refresh the list (onFrame). Needs accounts.manage.
 * API: GET/POST /api/whatsapp/numbers, PATCH/DELETE /api/whatsapp/numbers/{id},
 * POST /api/whatsapp/numbers/{id}/session; each card's "Sending pace" form is
 * settings-pace.js.
 */
import { h, icon } from './dom.js';
import { toast, toastError } from './toast.js';
import { sectionHead, field, select, formError, savedNote, confirmDialog } from './settings-ui.js';
import { paceForm } from './settings-pace.js';

/** Secrets per provider: [api name, label, hint]. */
const SECRETS = {
  meta: [
    ['access_token', 'Access token', 'A system-user token with whatsapp_business_messaging.'],
    ['app_secret', 'App secret', 'From the Meta app’s Basic settings; signs the webhooks.'],
  ],
  waha: [
    ['api_key', 'API key', 'WAHA’s X-Api-Key, if your WAHA asks for one.'],
    ['hmac_key', 'Webhook HMAC key', 'The HMAC key set on the WAHA webhook; without it webhooks are refused.'],
  ],
};

const ATTENTION = new Set(['FAILED', 'STOPPED']);

/** The badge class of a WAHA session status. */
export function statusTone(status) {
  if (!status) return '';
  if (ATTENTION.has(status)) return 'badge-danger';
  if (status === 'WORKING') return 'badge-success';
  return 'badge-warning';
}

/** Words for a session status. */
export function statusWords(status) {
  return (
    {
      WORKING: 'Working',
      STARTING: 'Starting',
      SCAN_QR_CODE: 'Waiting for QR scan',
      FAILED: 'Failed',
      STOPPED: 'Stopped',
    }[status] || 'Status unknown'
  );
}

async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    toast('Copied.', 'success');
  } catch {
    toast('Copying is not allowed here: select the text and copy it.', 'error');
  }
}

export function setupNumbersSection(ctx) {
  const { accounts, signal } = ctx;
  const request = accounts.request;
  let numbers = [];
  let teams = [];
  let verifyToken = '';
  let editing = null; // the number being edited, or 'new'
  let pacing = null; // the id of the number whose pace form is open

  const head = sectionHead({ title: 'WhatsApp numbers', backLabel: 'Back to settings', onBack: () => ctx.back('#/settings'), testid: 'numbers-title' });
  head.heading.id = 'numbers-heading';
  const addBtn = h('button', { type: 'button', className: 'btn btn-primary', dataset: { testid: 'number-add' }, onclick: () => openForm('new') }, icon('plus'), 'Add a number');
  const attention = h('div', { className: 'wn-attention', attrs: { role: 'alert' }, hidden: true, dataset: { testid: 'number-attention' } });
  const webhooks = h('div', { className: 'settings-card wn-webhooks', dataset: { testid: 'number-webhooks' } });
  const formSlot = h('div', {});
  const list = h('ul', { className: 'wn-list', dataset: { testid: 'number-list' }, attrs: { 'aria-label': 'WhatsApp numbers' } });
  const element = h(
    'section',
    { className: 'settings-section', dataset: { testid: 'settings-numbers' }, attrs: { 'aria-labelledby': 'numbers-heading' } },
    head.root,
    h(
      'p',
      { className: 'sf-note' },
      icon('info'),
      h('span', {}, 'Each number is an inbox: its conversations land in its team, and replies go out from the number the customer wrote to. Secrets are stored encrypted and never shown again.'),
    ),
    attention,
    h('div', { className: 'sf-actions wn-top' }, addBtn),
    formSlot,
    list,
    webhooks,
  );

  function codeLine(label, text, testid) {
    return h(
      'p',
      { className: 'wn-code-line' },
      h('span', { className: 'wn-code-label' }, label),
      h('code', { dataset: { testid } }, text),
      h('button', { type: 'button', className: 'btn btn-ghost btn-icon', onclick: () => copy(text) }, icon('copy'), h('span', { className: 'sr-only' }, `Copy ${label}`)),
    );
  }

  function paintWebhooks() {
    webhooks.replaceChildren(
      h('h3', { className: 'sf-card-title' }, 'Webhook addresses'),
      h('p', { className: 'sf-muted' }, 'Meta: WhatsApp → Configuration → Webhook, field “messages”. WAHA: the session’s webhook, events message, message.ack, message.reaction and session.status, with the HMAC key.'),
      codeLine('Meta callback URL', `${location.origin}/webhooks/whatsapp`, 'webhook-meta'),
      codeLine('Meta verify token', verifyToken, 'webhook-verify-token'),
      codeLine('WAHA webhook URL', `${location.origin}/webhooks/waha`, 'webhook-waha'),
    );
  }

  function secretSummary(n) {
    const items = (SECRETS[n.provider] || []).map(([key, label]) => {
      const state = n.secrets[key] || 'unset';
      const word = { set: 'set', unset: 'not set', unreadable: 'unreadable, enter again' }[state];
      return h('span', { className: `wn-secret is-${state}`, dataset: { testid: `secret-${key}` } }, `${label}: ${word}`);
    });
    return h('p', { className: 'agent-row-meta' }, ...items);
  }

  function row(n) {
    const isWaha = n.provider === 'waha';
    const status = isWaha
      ? h('span', { className: `badge ${statusTone(n.session_status)}`, dataset: { testid: 'number-status' } }, statusWords(n.session_status))
      : null;
    const where = isWaha ? `${n.waha_url || '—'} · session ${n.waha_session}` : `Phone number id ${n.phone_number_id || '—'}${n.waba_id ? ` · WABA ${n.waba_id}` : ''}`;
    const receiving = n.receiving
      ? h('span', { className: 'wn-ok' }, icon('circle-check'), 'Receiving webhooks')
      : h(
          'span',
          { className: 'wn-warn', dataset: { testid: 'number-not-receiving' } },
          icon('triangle-alert'),
          !n.active ? 'Turned off' : isWaha ? 'Refusing webhooks: no HMAC key' : 'Refusing webhooks: no app secret',
        );
    const actions = [];
    if (n.source === 'admin') {
      actions.push(h('button', { type: 'button', className: 'btn', dataset: { testid: 'number-edit' }, onclick: () => openForm(n) }, 'Edit', h('span', { className: 'sr-only' }, ` ${n.label}`)));
    }
    if (n.active) {
      actions.push(
        h('button', { type: 'button', className: 'btn', dataset: { testid: 'number-pace' }, attrs: { 'aria-expanded': String(pacing === n.id) }, onclick: () => togglePace(n) }, 'Sending pace', h('span', { className: 'sr-only' }, ` of ${n.label}`)),
      );
    }
    if (isWaha && n.waha_url) {
      actions.push(h('button', { type: 'button', className: 'btn', dataset: { testid: 'number-check' }, onclick: () => checkSession(n) }, 'Check session', h('span', { className: 'sr-only' }, ` of ${n.label}`)));
    }
    if (n.source === 'admin') {
      actions.push(
        n.active
          ? h('button', { type: 'button', className: 'btn btn-danger', dataset: { testid: 'number-deactivate' }, onclick: () => deactivate(n) }, 'Turn off', h('span', { className: 'sr-only' }, ` ${n.label}`))
          : h('button', { type: 'button', className: 'btn', dataset: { testid: 'number-reactivate' }, onclick: () => reactivate(n) }, 'Turn on', h('span', { className: 'sr-only' }, ` ${n.label}`)),
      );
    }
    const alarm = isWaha && ATTENTION.has(n.session_status);
    return h(
      'li',
      { className: `settings-card wn-row${n.active ? '' : ' is-inactive'}${alarm ? ' needs-attention' : ''}`, dataset: { testid: 'number-row', id: n.id } },
      h(
        'div',
        { className: 'wn-title' },
        h('strong', {}, n.label),
        h('span', { className: 'badge badge-info' }, isWaha ? 'WAHA' : 'Meta Cloud API'),
        status,
        n.source === 'env' ? h('span', { className: 'badge' }, 'Environment') : null,
      ),
      h('p', { className: 'agent-row-meta' }, icon('users'), h('span', { dataset: { testid: 'number-team' } }, n.team_name || 'Team from WHATSAPP_TEAM'), ' · ', where),
      h('p', { className: 'agent-row-meta' }, receiving),
      secretSummary(n),
      n.source === 'env' ? h('p', { className: 'sf-muted wn-env' }, 'Set by environment variables; change them and restart the hub to edit.') : null,
      actions.length ? h('div', { className: 'sf-actions' }, ...actions) : null,
      pacing === n.id ? paceForm({ request, n, onClose: () => togglePace(n) }) : null,
    );
  }

  function togglePace(n) {
    pacing = pacing === n.id ? null : n.id;
    paint();
    const card = list.querySelector(`[data-testid=number-row][data-id="${CSS.escape(n.id)}"]`);
    const target = card && (pacing ? card.querySelector('[data-testid=pace-form] input, [data-testid=pace-form] select') : card.querySelector('[data-testid=number-pace]'));
    if (target) target.focus();
  }

  function paint() {
    const down = numbers.filter((n) => n.active && n.provider === 'waha' && ATTENTION.has(n.session_status));
    attention.hidden = !down.length;
    attention.replaceChildren(
      ...(down.length
        ? [icon('triangle-alert'), h('p', {}, h('strong', {}, down.length === 1 ? `${down[0].label} ${down[0].session_status === 'STOPPED' ? 'is stopped' : 'has failed'}.` : `${down.length} numbers are down.`), ' No WhatsApp messages flow through a stopped or failed WAHA session until it is restarted in WAHA.')]
        : []),
    );
    list.replaceChildren(...(numbers.length ? numbers.map(row) : [h('li', { className: 'empty' }, 'No WhatsApp number yet: add the first one.')]));
    paintWebhooks();
  }

  function openForm(n) {
    editing = n;
    formSlot.replaceChildren(numberForm(n === 'new' ? null : n));
    const first = formSlot.querySelector('input, select');
    if (first) first.focus();
  }

  function closeForm() {
    editing = null;
    formSlot.replaceChildren();
  }

  function numberForm(n) {
    const isNew = !n;
    const provider = field({ label: 'Provider', testid: 'number-provider', control: select([['meta', 'Meta Cloud API'], ['waha', 'WAHA (self-hosted)']], n ? n.provider : 'meta') });
    provider.input.disabled = !isNew;
    const label = field({ label: 'Name', testid: 'number-label', value: n ? n.label : '', hint: 'What admins and agents call this inbox, e.g. “Sales line”.', required: true });
    const team = field({ label: 'Team', testid: 'number-team-select', control: select(teams.map((t) => [t.id, t.name]), n ? n.team_id : teams[0] && teams[0].id) });
    const pnid = field({ label: 'Phone number id', testid: 'number-pnid', value: n ? n.phone_number_id || '' : '', hint: 'WhatsApp Manager → Phone numbers (digits).', attrs: { inputmode: 'numeric' } });
    const waba = field({ label: 'WhatsApp Business Account id (optional)', testid: 'number-waba', value: n ? n.waba_id || '' : '', attrs: { inputmode: 'numeric' } });
    const url = field({ label: 'WAHA address', testid: 'number-waha-url', value: n ? n.waha_url || '' : '', hint: 'How the hub reaches WAHA, e.g. http://waha:3000.', type: 'url' });
    const session = field({ label: 'Session name', testid: 'number-session', value: n ? n.waha_session || '' : 'default' });
    const insecure = h('input', { type: 'checkbox', checked: Boolean(n && n.insecure_unsigned), dataset: { testid: 'number-insecure' } });
    const insecureLabel = h('label', { className: 'sf-check' }, insecure, h('span', {}, 'Accept unsigned webhooks (insecure: anyone who finds the address can post messages)'));
    const secretFields = {};
    const clears = {};
    for (const p of Object.keys(SECRETS)) {
      for (const [key, text, hint] of SECRETS[p]) {
        const state = n && n.secrets[key];
        secretFields[key] = field({
          label: text,
          type: 'password',
          testid: `number-${key}`,
          autocomplete: 'new-password',
          hint: state === 'set' ? `${hint} Set — leave blank to keep it.` : hint,
          attrs: { spellcheck: 'false' },
        });
        if (state === 'set' || state === 'unreadable') {
          const box = h('input', { type: 'checkbox', dataset: { testid: `number-clear-${key}` } });
          clears[key] = box;
          secretFields[key].root.append(h('label', { className: 'sf-check' }, box, h('span', {}, `Remove the ${text.toLowerCase()}`)));
        }
      }
    }
    const metaBox = h('div', { className: 'sf-grid' }, pnid.root, waba.root, secretFields.access_token.root, secretFields.app_secret.root);
    const wahaBox = h('div', {}, h('div', { className: 'sf-grid' }, url.root, session.root, secretFields.api_key.root, secretFields.hmac_key.root), insecureLabel);
    const showProvider = () => {
      metaBox.hidden = provider.input.value !== 'meta';
      wahaBox.hidden = provider.input.value !== 'waha';
    };
    provider.input.addEventListener('change', showProvider);
    showProvider();
    // A field's error goes as soon as it is edited; the next submit checks again.
    for (const f of [label, pnid, url, session]) f.input.addEventListener('input', () => f.setError(''));
    const error = formError('number-error');
    const saved = savedNote('number-saved');
    const submit = h('button', { type: 'submit', className: 'btn btn-primary', dataset: { testid: 'number-submit' } }, isNew ? 'Add number' : 'Save');
    const cancel = h('button', { type: 'button', className: 'btn', onclick: closeForm }, 'Cancel');
    const form = h(
      'form',
      { className: 'settings-card', noValidate: true, dataset: { testid: 'number-form' }, attrs: { 'aria-label': isNew ? 'New WhatsApp number' : `Edit ${n.label}` } },
      h('h3', { className: 'sf-card-title' }, isNew ? 'New WhatsApp number' : `Edit ${n.label}`),
      h('div', { className: 'sf-grid' }, provider.root, label.root, team.root),
      metaBox,
      wahaBox,
      error.el,
      h('div', { className: 'sf-actions' }, submit, cancel, saved.el),
    );
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      error.show('');
      const p = provider.input.value;
      label.setError(label.input.value.trim() ? '' : 'Give the number a name.');
      if (p === 'meta') pnid.setError(/^\d{1,32}$/.test(pnid.input.value.trim()) ? '' : 'The phone number id is digits only.');
      else pnid.setError('');
      if (p === 'waha') {
        url.setError(/^https?:\/\/\S+$/.test(url.input.value.trim()) ? '' : 'Enter a full address, e.g. http://waha:3000.');
        session.setError(/^[A-Za-z0-9_-]{1,64}$/.test(session.input.value.trim()) ? '' : 'Use letters, digits, _ or -.');
      } else {
        url.setError('');
        session.setError('');
      }
      const bad = form.querySelector('[aria-invalid=true]');
      if (bad) {
        bad.focus();
        return;
      }
      const body = { label: label.input.value.trim(), team_id: team.input.value };
      if (p === 'meta') {
        body.phone_number_id = pnid.input.value.trim();
        body.waba_id = waba.input.value.trim();
      } else {
        body.waha_url = url.input.value.trim();
        body.waha_session = session.input.value.trim();
        body.insecure_unsigned = insecure.checked;
      }
      for (const [key] of SECRETS[p]) {
        const v = secretFields[key].input.value.trim();
        if (v) body[key] = v;
      }
      if (isNew) body.provider = p;
      else body.clear_secrets = Object.entries(clears).filter(([, b]) => b.checked).map(([k]) => k);
      submit.disabled = true;
      try {
        if (isNew) await request('POST', '/api/whatsapp/numbers', { body });
        else await request('PATCH', `/api/whatsapp/numbers/${encodeURIComponent(n.id)}`, { body });
        closeForm();
        toast(isNew ? 'Number added.' : 'Number saved.', 'success');
        await refresh();
      } catch (err) {
        error.show(err.message || 'The number could not be saved.');
      } finally {
        submit.disabled = false;
      }
    });
    return form;
  }

  async function checkSession(n) {
    try {
      const answer = await request('POST', `/api/whatsapp/numbers/${encodeURIComponent(n.id)}/session`, { body: {} });
      toast(`${n.label}: ${statusWords(answer.status)}.`, ATTENTION.has(answer.status) ? 'error' : 'success');
      await refresh();
    } catch (err) {
      toastError(err);
    }
  }

  async function deactivate(n) {
    const ok = await confirmDialog({
      title: `Turn off ${n.label}?`,
      text: 'Its webhooks are refused and nothing is sent from it. Its conversations stay where they are; you can turn it on again.',
      confirmLabel: 'Turn off',
      danger: true,
    });
    if (!ok) return;
    try {
      await request('DELETE', `/api/whatsapp/numbers/${encodeURIComponent(n.id)}`);
      await refresh();
    } catch (err) {
      toastError(err);
    }
  }

  async function reactivate(n) {
    try {
      await request('PATCH', `/api/whatsapp/numbers/${encodeURIComponent(n.id)}`, { body: { active: true } });
      await refresh();
    } catch (err) {
      toastError(err);
    }
  }

  async function refresh() {
    try {
      const [body, t] = await Promise.all([request('GET', '/api/whatsapp/numbers'), teams.length ? { teams } : request('GET', '/api/teams')]);
      if (signal.aborted) return;
      numbers = body.numbers || [];
      verifyToken = body.meta_verify_token || '';
      teams = t.teams || [];
      paint();
    } catch (err) {
      if (err.status !== 401) toastError(err);
    }
  }

  return {
    element,
    route() {
      if (!editing) refresh();
      head.heading.focus({ preventScroll: true });
    },
    leave() {
      closeForm();
      pacing = null;
    },
    /** `number_status` frames: the list shows the new session status at once. */
    onFrame(f) {
      if (f.type !== 'number_status') return;
      const n = numbers.find((x) => x.id === f.number_id);
      if (n) {
        n.session_status = f.status;
        n.session_status_at = f.at;
        paint();
      } else {
        refresh();
      }
    },
  };
}
