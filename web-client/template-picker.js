/*
 * The composer's template picker (issue 17 §2, docs/campaigns.md): in a Meta
 * WhatsApp conversation the agent picks an APPROVED template — filtered to the
 * contact's language (all languages one click away) and searchable — fills its
 * `{{n}}` variables (each prefilled from a contact / lead field the agent can
 * change: first name, name, phone, package, campaign code, stage), gives the
 * header media link when the template has a media header, sees a live preview
 * and sends. Outside the 24-hour window this is what the composer offers instead
 * of free text. API: GET /api/conversations/{id}/templates,
 * POST /api/conversations/{id}/template.
 */
import { h, icon } from './dom.js';
import { toast, toastError } from './toast.js';

/** Fields a variable can be filled from, in the order offered. */
const FIELDS = [
  ['first_name', 'First name'],
  ['name', 'Name'],
  ['phone', 'Phone'],
  ['package', 'Package'],
  ['campaign_code', 'Campaign code'],
  ['stage', 'Lead stage'],
];

/** `{{n}}` replaced by values[n-1] (blank values stay visible as `{{n}}`). */
export function fillText(text, values) {
  return String(text || '').replace(/\{\{\s*(\d+)\s*\}\}/g, (m, n) => {
    const v = values[Number(n) - 1];
    return v && v.trim() ? v : m;
  });
}

/**
 * The preview bubble of a template `shape` (`GET /api/templates`) with its
 * `{{n}}` filled: `header` and `body` are the variable values in order, `media`
 * the header media link (the Broadcasts wizard shows the same bubble).
 */
export function templateBubble(shape, { header = [], body = [], media = '' } = {}) {
  const s = shape;
  const parts = [];
  if (s.header && s.header.format === 'text') parts.push(h('strong', {}, fillText(s.header.text, header)));
  if (s.header && s.header.format === 'media') parts.push(h('span', { className: 'tpk-media' }, `[${s.header.kind}] ${media || ''}`));
  parts.push(h('p', {}, fillText(s.body, body)));
  if (s.footer) parts.push(h('small', {}, s.footer));
  if ((s.buttons || []).length) parts.push(h('div', { className: 'tpk-buttons' }, ...s.buttons.map((b) => h('span', { className: 'tpk-btn' }, b))));
  return h('div', { className: 'tpk-bubble' }, ...parts);
}

/** Whether template language `lang` suits contact locale `locale` (`en` ~ `en_US`). */
export function languageFits(lang, locale) {
  if (!locale) return true;
  const a = String(lang).toLowerCase().replace('-', '_').split('_')[0];
  const b = String(locale).toLowerCase().replace('-', '_').split('_')[0];
  return a === b;
}

/**
 * Opens the picker for conversation `conversationId` in `host` (an element above
 * the composer); `onSent(message)` receives the stored message.
 */
export async function openTemplatePicker({ api, conversationId, host, onSent }) {
  let offer;
  try {
    offer = await api.request('GET', `/api/conversations/${encodeURIComponent(conversationId)}/templates`);
  } catch (err) {
    toastError(err);
    return;
  }
  const fields = offer.fields || {};
  const sendable = (offer.templates || []).filter((t) => t.sendable);
  let allLanguages = !sendable.some((t) => languageFits(t.language, fields.locale));
  let chosen = null;

  const search = h('input', { type: 'search', className: 'tpk-search', placeholder: 'Search templates', attrs: { 'aria-label': 'Search templates' }, dataset: { testid: 'template-search' } });
  const langToggle = h('label', { className: 'tpk-lang' }, h('input', { type: 'checkbox', checked: allLanguages, onchange: (e) => { allLanguages = e.target.checked; paintList(); } }), ' All languages');
  const list = h('ul', { className: 'tpk-list', attrs: { 'aria-label': 'Approved templates' }, dataset: { testid: 'template-list' } });
  const form = h('div', { className: 'tpk-form', dataset: { testid: 'template-form' } });
  const preview = h('div', { className: 'tpk-preview', attrs: { 'aria-live': 'polite' }, dataset: { testid: 'template-preview' } });
  const close = () => panel.remove();
  const panel = h(
    'section',
    { className: 'tpk', dataset: { testid: 'template-picker' }, attrs: { 'aria-label': 'Send a template' } },
    h('div', { className: 'tpk-head' }, h('strong', {}, 'Send a WhatsApp template'),
      h('button', { type: 'button', className: 'btn btn-ghost btn-icon', onclick: close }, icon('x'), h('span', { className: 'sr-only' }, 'Close'))),
    h('div', { className: 'tpk-filters' }, search, langToggle),
    list,
    form,
    preview,
  );
  search.addEventListener('input', paintList);
  host.replaceChildren(panel);

  function paintList() {
    const q = search.value.trim().toLowerCase();
    const shown = sendable.filter((t) => (allLanguages || languageFits(t.language, fields.locale)) && (!q || t.name.toLowerCase().includes(q) || (t.shape.body || '').toLowerCase().includes(q)));
    list.replaceChildren(
      ...(shown.length
        ? shown.map((t) => h('li', {}, h('button', { type: 'button', className: `tpk-item${chosen === t ? ' is-chosen' : ''}`, dataset: { testid: 'template-choice', name: t.name }, onclick: () => choose(t) },
            h('strong', {}, t.name), h('span', { className: 'tpk-langcode' }, ` ${t.language} · ${t.category}`))))
        : [h('li', { className: 'tpk-empty' }, 'No approved template fits. Sync templates in Settings → Message templates.')]),
    );
  }

  /** One variable input with its "fill from" field choice. */
  function variable(label, initialField, onInput) {
    const input = h('input', { type: 'text', className: 'tpk-value', attrs: { 'aria-label': label, maxlength: '1024' } });
    const from = h('select', { attrs: { 'aria-label': `${label}: fill from` } }, h('option', { value: '' }, 'Type a value'), ...FIELDS.map(([k, l]) => h('option', { value: k }, l)));
    from.value = initialField && fields[initialField] ? initialField : '';
    input.value = from.value ? fields[from.value] || '' : '';
    from.addEventListener('change', () => { if (from.value) input.value = fields[from.value] || ''; onInput(); });
    input.addEventListener('input', onInput);
    return { row: h('div', { className: 'tpk-var' }, h('span', { className: 'tpk-var-label' }, label), input, from), input };
  }

  function choose(t) {
    chosen = t;
    paintList();
    const s = t.shape;
    const body = [];
    const header = [];
    const buttons = {};
    let media = null;
    const rows = [];
    const update = () => paintPreview();
    for (let i = 1; i <= s.body_variables; i += 1) {
      const v = variable(`Body {{${i}}}`, i === 1 ? 'first_name' : '', update);
      body.push(v.input);
      rows.push(v.row);
    }
    if (s.header && s.header.format === 'text') {
      for (let i = 1; i <= s.header.variables; i += 1) {
        const v = variable(`Header {{${i}}}`, '', update);
        header.push(v.input);
        rows.push(v.row);
      }
    }
    if (s.header && s.header.format === 'media') {
      media = h('input', { type: 'url', className: 'tpk-value', placeholder: 'https://…', attrs: { 'aria-label': `Header ${s.header.kind} link` }, dataset: { testid: 'template-media' } });
      media.addEventListener('input', update);
      rows.push(h('div', { className: 'tpk-var' }, h('span', { className: 'tpk-var-label' }, `Header ${s.header.kind} link`), media));
    }
    for (const b of s.variable_buttons || []) {
      buttons[b.index] = [];
      for (let i = 1; i <= b.variables; i += 1) {
        const v = variable(`Button “${b.text}” {{${i}}}`, '', update);
        buttons[b.index].push(v.input);
        rows.push(v.row);
      }
    }
    const send = h('button', { type: 'button', className: 'btn btn-primary', dataset: { testid: 'template-send' } }, icon('send'), 'Send template');
    send.addEventListener('click', async () => {
      send.disabled = true;
      const payload = {
        name: t.name,
        language: t.language,
        body: body.map((i) => i.value.trim()),
        header: header.map((i) => i.value.trim()),
        buttons: Object.fromEntries(Object.entries(buttons).map(([k, ins]) => [k, ins.map((i) => i.value.trim())])),
        client_msg_id: `tpl-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`,
      };
      if (media) payload.header_media_url = media.value.trim();
      try {
        const answer = await api.request('POST', `/api/conversations/${encodeURIComponent(conversationId)}/template`, { body: payload });
        toast('Template sent.', 'success');
        close();
        if (onSent) onSent(answer.message);
      } catch (err) {
        toastError(err);
        send.disabled = false;
      }
    });
    form.replaceChildren(...rows, h('div', { className: 'tpk-actions' }, send));
    paintPreview = () => {
      const values = (ins) => ins.map((i) => i.value);
      preview.replaceChildren(templateBubble(s, { header: values(header), body: values(body), media: media ? media.value : '' }));
    };
    paintPreview();
  }
  let paintPreview = () => {};

  paintList();
  search.focus({ preventScroll: true });
}
