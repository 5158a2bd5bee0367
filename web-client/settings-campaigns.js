/*
 * "Campaign codes" (#/settings/campaigns, issue 16, docs/admin.md): the codes a
 * WhatsApp ad puts in the customer's first message (UMR_MAR_2025_HEMAT) with the
 * package each one answers with — name, price, departure, duration, quota, image,
 * brochure, itinerary. leads.read sees the list; campaigns.manage also creates,
 * edits and deactivates (the hub keeps deactivated codes: leads keep their tag).
 * API: GET/POST /api/campaign-codes, PUT/DELETE /api/campaign-codes/{code}.
 */
import { h, icon } from './dom.js';
import { toastError } from './toast.js';
import { can } from './permissions.js';
import { sectionHead, field, formError, savedNote, confirmDialog } from './settings-ui.js';

const CODE_RE = /^[A-Z0-9]+_[A-Z]{3}_\d{4}_[A-Z0-9]+$/;

/** The package fields of the form: [name, label, type, hint]. */
const FIELDS = [
  ['package_name', 'Package name', 'text', 'What the customer is told, e.g. “Umrah Hemat March 2025”.'],
  ['price', 'Price', 'number', 'Whole amount, no dots or commas (e.g. 28500000).'],
  ['currency', 'Currency', 'text', 'For example IDR.'],
  ['departure_date', 'Departure date', 'date', ''],
  ['duration_days', 'Duration (days)', 'number', ''],
  ['quota', 'Seats (quota)', 'number', ''],
  ['image_url', 'Image address', 'url', 'Sent with the welcome message (https://…).'],
  ['brochure_url', 'Brochure address', 'url', 'https://…'],
  ['itinerary', 'Itinerary', 'textarea', 'A few lines, day by day.'],
];

/** A code's price as words ("IDR 28,500,000"); '' when none. */
export function priceText(c) {
  if (c.price === null || c.price === undefined) return '';
  return `${c.currency || ''} ${Number(c.price).toLocaleString()}`.trim();
}

/** The request body of the form's values; numbers as numbers, blanks left out. */
export function codeBody(values) {
  const body = {};
  for (const [name, , type] of FIELDS) {
    const v = String(values[name] ?? '').trim();
    if (!v) continue;
    body[name] = type === 'number' ? Number(v) : v;
  }
  return body;
}

export function setupCampaignsSection(ctx) {
  const { accounts, me, signal } = ctx;
  const request = accounts.request;
  const manage = can(me, 'campaigns.manage');
  let codes = [];
  let editing = null; // the code being edited, or null for a new one

  const head = sectionHead({ title: 'Campaign codes', backLabel: 'Back to settings', onBack: () => ctx.back('#/settings'), testid: 'campaigns-title' });
  head.heading.id = 'campaigns-heading';
  const list = h('ul', { className: 'agent-list', dataset: { testid: 'campaign-list' }, attrs: { 'aria-label': 'Campaign codes' } });
  const form = manage ? codeForm() : null;
  const element = h(
    'section',
    { className: 'settings-section growth-split', dataset: { testid: 'settings-campaigns' }, attrs: { 'aria-labelledby': 'campaigns-heading' } },
    h(
      'div',
      {},
      head.root,
      h(
        'p',
        { className: 'sf-note' },
        icon('info'),
        h('span', {}, 'A customer who writes a code (from an ad) gets its package as the first answer, and their lead is tagged with it.'),
      ),
      list,
    ),
    form ? form.root : h('p', { className: 'sf-note' }, icon('info'), h('span', {}, 'You can see the codes. Changing them needs the campaigns permission.')),
  );

  function codeForm() {
    const code = field({ label: 'Code', testid: 'campaign-code', hint: 'PACKAGE_MONTH_YEAR_TYPE, e.g. UMR_MAR_2025_HEMAT.', attrs: { spellcheck: 'false' }, required: true });
    const inputs = {};
    const fields = FIELDS.map(([name, label, type, hint]) => {
      const control = type === 'textarea' ? h('textarea', { name, rows: 3 }) : null;
      const f = field({ label, type: type === 'textarea' ? 'text' : type, name, hint, control, testid: `campaign-${name.replace(/_/g, '-')}`, required: name === 'package_name' });
      inputs[name] = f;
      return f.root;
    });
    const active = h('input', { type: 'checkbox', checked: true, dataset: { testid: 'campaign-active' } });
    const error = formError('campaign-error');
    const saved = savedNote('campaign-saved');
    const title = h('h3', { className: 'sf-card-title' }, 'New campaign code');
    const submit = h('button', { type: 'submit', className: 'btn btn-primary', dataset: { testid: 'campaign-submit' } }, icon('plus'), 'Create code');
    const cancel = h('button', { type: 'button', className: 'btn', hidden: true, onclick: () => fill(null) }, 'Cancel editing');
    const root = h(
      'form',
      { className: 'settings-card', noValidate: true, dataset: { testid: 'campaign-form' }, attrs: { 'aria-label': 'Campaign code' } },
      title,
      code.root,
      h('div', { className: 'sf-grid' }, ...fields),
      h('label', { className: 'sf-check' }, active, h('span', {}, 'Active (customers who write it get the package)')),
      error.el,
      h('div', { className: 'sf-actions' }, submit, cancel, saved.el),
    );

    function fill(c) {
      editing = c ? c.code : null;
      code.input.value = c ? c.code : '';
      code.input.readOnly = Boolean(c);
      for (const [name] of FIELDS) inputs[name].input.value = c && c[name] !== null && c[name] !== undefined ? String(c[name]) : '';
      active.checked = c ? Boolean(c.active) : true;
      title.textContent = c ? `Edit ${c.code}` : 'New campaign code';
      submit.replaceChildren(icon(c ? 'check' : 'plus'), c ? 'Save changes' : 'Create code');
      cancel.hidden = !c;
      error.show('');
      if (c) code.input.closest('form').scrollIntoView({ block: 'start' });
      (c ? inputs.package_name.input : code.input).focus({ preventScroll: Boolean(c) });
    }

    root.addEventListener('submit', async (e) => {
      e.preventDefault();
      error.show('');
      saved.show('');
      const values = Object.fromEntries(FIELDS.map(([name]) => [name, inputs[name].input.value]));
      const wanted = code.input.value.trim().toUpperCase();
      code.setError(!editing && !CODE_RE.test(wanted) ? 'Write the code as PACKAGE_MONTH_YEAR_TYPE, e.g. UMR_MAR_2025_HEMAT.' : '');
      inputs.package_name.setError(values.package_name.trim() ? '' : 'Enter the package name customers see.');
      if (root.querySelector('[aria-invalid=true]')) {
        root.querySelector('[aria-invalid=true]').focus();
        return;
      }
      const body = { ...codeBody(values), active: active.checked };
      submit.disabled = true;
      try {
        if (editing) await request('PUT', `/api/campaign-codes/${encodeURIComponent(editing)}`, { body });
        else await request('POST', '/api/campaign-codes', { body: { ...body, code: wanted } });
        saved.show(editing ? `Saved ${editing}.` : `Created ${wanted}.`);
        fill(null);
        await refresh();
      } catch (err) {
        error.show(err.message || 'The code could not be saved.');
      } finally {
        submit.disabled = false;
      }
    });
    return { root, fill };
  }

  function row(c) {
    const facts = [priceText(c), c.departure_date ? `departs ${c.departure_date}` : '', c.duration_days ? `${c.duration_days} days` : '', c.quota ? `${c.quota} seats` : '']
      .filter(Boolean)
      .join(' · ');
    const actions = manage
      ? h(
          'div',
          { className: 'sf-actions' },
          h('button', { type: 'button', className: 'btn', dataset: { testid: 'campaign-edit' }, onclick: () => form.fill(c) }, 'Edit', h('span', { className: 'sr-only' }, ` ${c.code}`)),
          c.active
            ? h('button', { type: 'button', className: 'btn btn-danger', dataset: { testid: 'campaign-deactivate' }, onclick: () => deactivate(c) }, 'Deactivate', h('span', { className: 'sr-only' }, ` ${c.code}`))
            : null,
        )
      : null;
    return h(
      'li',
      { className: `agent-row campaign-row${c.active ? '' : ' is-inactive'}`, dataset: { testid: 'campaign-row', code: c.code } },
      h(
        'div',
        { className: 'agent-row-main' },
        h('p', { className: 'campaign-code' }, icon('tag'), h('strong', {}, c.code), ' ', c.active ? h('span', { className: 'badge badge-success' }, 'Active') : h('span', { className: 'badge' }, 'Inactive')),
        h('p', {}, c.package_name),
        facts ? h('p', { className: 'agent-row-meta' }, facts) : null,
      ),
      actions,
    );
  }

  async function deactivate(c) {
    const ok = await confirmDialog({
      title: `Deactivate ${c.code}?`,
      text: 'Customers who write this code get the general welcome instead. Leads already tagged keep the tag. You can turn it on again by editing it.',
      confirmLabel: 'Deactivate',
      danger: true,
    });
    if (!ok) return;
    try {
      await request('DELETE', `/api/campaign-codes/${encodeURIComponent(c.code)}`);
      await refresh();
    } catch (err) {
      toastError(err);
    }
  }

  function render() {
    list.replaceChildren(...(codes.length ? codes.map(row) : [h('li', { className: 'empty' }, 'No campaign codes yet.')]));
  }

  async function refresh() {
    try {
      const body = await request('GET', '/api/campaign-codes');
      if (signal.aborted) return;
      codes = body.campaign_codes || [];
      render();
    } catch (err) {
      if (err.status !== 401) toastError(err);
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
