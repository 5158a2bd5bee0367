/*
 * The create / edit wizard of the Broadcasts page (#/broadcasts/new and
 * #/broadcasts/{id}/edit, issue 17 §4, docs/campaigns.md "The Broadcasts page"):
 * 1 name and number; 2 content — an approved template of the number's WABA with
 * each body `{{n}}` mapped to the contact's name, phone, the lead's campaign code
 * or a fixed text, with a live preview (template-picker.js's bubble), or free text
 * for a WAHA number (it only reaches customers whose 24-hour window is open);
 * 3 audience — a saved segment with its size and first contacts; 4 when — now, at
 * a local time in an IANA time zone, or kept as a draft, and the attribution
 * window; 5 review and confirm. The hub checks everything again: a 422 message
 * shows in the form.
 * API: GET /api/broadcasts/numbers (the numbers the caller may send from),
 * GET /api/templates, GET /api/segments,
 * GET /api/segments/{id}/preview, POST/PUT /api/broadcasts,
 * POST /api/broadcasts/{id}/{send,schedule,unschedule}.
 */
import { h, icon } from './dom.js';
import { contactName } from './format.js';
import { fillText, templateBubble } from './template-picker.js';
import { field, select, formError } from './settings-ui.js';

const enc = encodeURIComponent;

/** Where a template variable's value comes from, as offered. */
export const SOURCES = [
  ['contact_name', 'Contact name'],
  ['contact_phone', 'Contact phone'],
  ['campaign_code', 'Campaign code'],
  ['text', 'Fixed text'],
];

const STEPS = ['Name and number', 'Content', 'Audience', 'When', 'Review'];

/** A variable source in words, with its text for a fixed one. */
export function sourceWords(v) {
  if (v.source === 'text') return `“${v.value || ''}”`;
  const s = SOURCES.find(([k]) => k === v.source);
  return s ? s[1] : v.source;
}

/** The browser's IANA time zone (UTC if it has none). */
export function browserZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

function zones(current) {
  let list = [];
  try {
    list = Intl.supportedValuesOf('timeZone');
  } catch {
    list = [];
  }
  const all = new Set(['UTC', ...list]);
  if (current) all.add(current);
  return [...all].sort();
}

/** A template the wizard can broadcast: approved, body variables only. */
function broadcastable(t) {
  const s = t.shape || {};
  const headerVars = s.header && s.header.format === 'text' && s.header.variables > 0;
  return t.sendable && !headerVars && !(s.variable_buttons || []).length;
}

/** `YYYY-MM-DDTHH:MM` of an RFC 3339 time, as the wall clock in `zone`. */
function localInput(rfc, zone) {
  try {
    const parts = new Intl.DateTimeFormat('en-CA', {
      timeZone: zone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    }).formatToParts(new Date(rfc));
    const p = Object.fromEntries(parts.map((x) => [x.type, x.value]));
    return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
  } catch {
    return '';
  }
}

/**
 * Builds the wizard for `existing` (a BroadcastView to edit) or a new broadcast.
 * `onDone(broadcast)` after it is saved (and started or scheduled),
 * `onCancel()` when the marketer leaves it. Returns `{element, focus}`.
 */
export function createWizard({ request, existing, onDone, onCancel }) {
  const draft = existing
    ? {
        name: existing.name,
        number_id: existing.number_id,
        content: JSON.parse(JSON.stringify(existing.content)),
        segment_id: existing.segment_id || '',
        attribution_days: existing.attribution_days,
        when: existing.state === 'scheduled' ? 'later' : 'draft',
        time_zone: existing.time_zone || browserZone(),
        send_at: existing.send_at ? localInput(existing.send_at, existing.time_zone || browserZone()) : '',
      }
    : { name: '', number_id: '', content: null, segment_id: '', attribution_days: 7, when: 'now', time_zone: browserZone(), send_at: '' };
  let step = 0;
  let numbers = [];
  let templates = [];
  let wabas = [];
  let segments = [];
  let preview = null; // {segment_id, count, contacts}

  const stepList = h(
    'ol',
    { className: 'bc-steps', attrs: { 'aria-label': 'Steps' } },
    STEPS.map((s, i) => h('li', { dataset: { step: String(i) } }, h('span', { className: 'bc-step-n', attrs: { 'aria-hidden': 'true' } }, String(i + 1)), h('span', {}, s))),
  );
  const title = h('h2', { className: 'bc-wizard-title', tabIndex: -1, dataset: { testid: 'bc-wizard-title' } });
  const body = h('div', { className: 'bc-wizard-body' });
  const error = formError('bc-wizard-error');
  const backBtn = h('button', { type: 'button', className: 'btn', dataset: { testid: 'bc-wizard-back' }, onclick: () => go(step - 1) }, icon('arrow-left'), 'Back');
  const nextBtn = h('button', { type: 'submit', className: 'btn btn-primary', dataset: { testid: 'bc-wizard-next' } });
  const cancelBtn = h('button', { type: 'button', className: 'btn btn-ghost', dataset: { testid: 'bc-wizard-cancel' }, onclick: () => onCancel() }, 'Cancel');
  const element = h(
    'form',
    { className: 'settings-card bc-wizard', noValidate: true, dataset: { testid: 'bc-wizard' }, attrs: { 'aria-label': existing ? `Edit ${existing.name}` : 'New broadcast' } },
    stepList,
    title,
    body,
    error.el,
    h('div', { className: 'sf-actions bc-wizard-actions' }, backBtn, nextBtn, h('span', { className: 'spacer' }), cancelBtn),
  );
  element.addEventListener('submit', (e) => {
    e.preventDefault();
    next();
  });

  const number = () => numbers.find((n) => n.id === draft.number_id);
  const isWaha = () => Boolean(number() && number().provider === 'waha');

  /** Templates on the WABA of the chosen number. */
  function numberTemplates() {
    const n = number();
    const ids = new Set(wabas.filter((w) => (w.numbers || []).includes(draft.number_id)).map((w) => w.waba_id));
    if (n && n.waba_id) ids.add(n.waba_id);
    return templates.filter((t) => ids.has(t.waba_id) && !t.deleted);
  }

  async function load() {
    const [nums, tpl, seg] = await Promise.all([
      request('GET', '/api/broadcasts/numbers'),
      request('GET', '/api/templates'),
      request('GET', '/api/segments'),
    ]);
    templates = tpl.templates || [];
    wabas = tpl.wabas || [];
    segments = seg.segments || [];
    numbers = (nums.numbers || []).map((n) => ({ id: n.id, label: n.label, provider: n.provider, waba_id: n.waba_id }));
    if (existing && !numbers.some((n) => n.id === existing.number_id)) {
      numbers.push({ id: existing.number_id, label: existing.number_label || existing.number_id, provider: existing.provider || 'meta' });
    }
  }

  function paintSteps() {
    for (const li of stepList.children) {
      const i = Number(li.dataset.step);
      li.classList.toggle('is-done', i < step);
      if (i === step) li.setAttribute('aria-current', 'step');
      else li.removeAttribute('aria-current');
    }
    title.textContent = `Step ${step + 1} of ${STEPS.length}: ${STEPS[step]}`;
    backBtn.hidden = step === 0;
    const last = step === STEPS.length - 1;
    const verb = { now: 'Send now', later: 'Schedule', draft: 'Save draft' }[draft.when];
    nextBtn.replaceChildren(...(last ? [icon(draft.when === 'now' ? 'send' : draft.when === 'later' ? 'clock' : 'check'), verb] : ['Next']));
  }

  let check = () => true; // the current step's validation

  function go(i) {
    error.show('');
    step = Math.max(0, Math.min(STEPS.length - 1, i));
    check = [stepName, stepContent, stepAudience, stepWhen, stepReview][step]();
    paintSteps();
    title.focus({ preventScroll: true });
  }

  async function next() {
    error.show('');
    if (!check()) {
      const bad = body.querySelector('[aria-invalid=true]');
      if (bad) bad.focus();
      return;
    }
    if (step < STEPS.length - 1) go(step + 1);
    else await save();
  }

  // ---- step 1: name and number ----
  function stepName() {
    const name = field({ label: 'Name', testid: 'bc-name', value: draft.name, hint: 'For your team, e.g. “March umroh promo”. Customers do not see it.', required: true, attrs: { maxlength: '120' } });
    const numberSelect = field({
      label: 'Send from',
      testid: 'bc-number',
      control: select([['', 'Choose a WhatsApp number'], ...numbers.map((n) => [n.id, `${n.label} (${n.provider === 'waha' ? 'WAHA' : 'Meta'})`])], draft.number_id),
      hint: numbers.length ? 'Meta numbers send approved templates; WAHA numbers send text.' : 'No WhatsApp number is set up yet (Settings → WhatsApp numbers).',
    });
    name.input.addEventListener('input', () => {
      draft.name = name.input.value;
      name.setError('');
    });
    numberSelect.input.addEventListener('change', () => {
      if (numberSelect.input.value !== draft.number_id) draft.content = null;
      draft.number_id = numberSelect.input.value;
      numberSelect.setError('');
    });
    body.replaceChildren(h('div', { className: 'sf-grid' }, name.root, numberSelect.root));
    return () => {
      name.setError(draft.name.trim() ? '' : 'Give the broadcast a name.');
      numberSelect.setError(draft.number_id ? '' : 'Choose the number it goes out from.');
      return Boolean(draft.name.trim() && draft.number_id);
    };
  }

  // ---- step 2: content ----
  function stepContent() {
    if (isWaha()) return textContent();
    const offered = numberTemplates();
    const usable = offered.filter(broadcastable);
    const c = draft.content && draft.content.kind === 'template' ? draft.content : null;
    const choice = field({
      label: 'Approved template',
      testid: 'bc-template',
      control: select([['', 'Choose a template'], ...usable.map((t) => [`${t.name}|${t.language}`, `${t.name} (${t.language}, ${t.category.toLowerCase()})`])], c ? `${c.name}|${c.language}` : ''),
      hint: usable.length
        ? `${usable.length} of ${offered.length} templates of this number’s WhatsApp Business Account can be broadcast (approved, body variables only).`
        : 'This number has no approved template that can be broadcast: sync templates in Settings → Message templates.',
    });
    const mapping = h('div', { className: 'bc-vars', dataset: { testid: 'bc-vars' } });
    const bubble = h('div', { className: 'bc-preview', attrs: { 'aria-live': 'polite' }, dataset: { testid: 'bc-preview' } });
    const chosen = () => usable.find((t) => `${t.name}|${t.language}` === choice.input.value);
    const sample = { contact_name: 'Budi Santoso', contact_phone: '+62 812 3456 7890', campaign_code: 'UMR-0325' };
    const paintPreview = () => {
      const t = chosen();
      if (!t) {
        bubble.replaceChildren();
        return;
      }
      const values = draft.content.variables.map((v) => (v.source === 'text' ? v.value || '' : sample[v.source]));
      bubble.replaceChildren(h('p', { className: 'bc-preview-label' }, 'Preview (with sample contact details)'), templateBubble(t.shape, { body: values, media: draft.content.header_media_url || '' }));
    };
    let fields = [];
    const paintMapping = () => {
      const t = chosen();
      fields = [];
      if (!t) {
        draft.content = null;
        mapping.replaceChildren();
        paintPreview();
        return;
      }
      const same = draft.content && draft.content.kind === 'template' && draft.content.name === t.name && draft.content.language === t.language;
      const old = same ? draft.content.variables : [];
      draft.content = {
        kind: 'template',
        name: t.name,
        language: t.language,
        variables: Array.from({ length: t.shape.body_variables }, (_, i) => old[i] || (i === 0 ? { source: 'contact_name' } : { source: 'text', value: '' })),
        header_media_url: same ? draft.content.header_media_url : undefined,
      };
      const rows = draft.content.variables.map((v, i) => {
        const label = `Body {{${i + 1}}}`;
        const from = select(SOURCES, v.source);
        from.setAttribute('aria-label', `${label}: fill from`);
        from.dataset.testid = 'bc-var-source';
        const text = h('input', { type: 'text', value: v.value || '', className: 'bc-var-text', attrs: { 'aria-label': `${label}: fixed text`, maxlength: '1024' }, dataset: { testid: 'bc-var-text' } });
        const err = h('p', { className: 'sf-error', hidden: true });
        const sync = () => {
          text.hidden = from.value !== 'text';
          draft.content.variables[i] = from.value === 'text' ? { source: 'text', value: text.value } : { source: from.value };
          err.hidden = true;
          text.removeAttribute('aria-invalid');
          paintPreview();
        };
        from.addEventListener('change', sync);
        text.addEventListener('input', sync);
        text.hidden = from.value !== 'text';
        fields.push({ from, text, err });
        return h('div', { className: 'bc-var', dataset: { testid: 'bc-var' } }, h('span', { className: 'bc-var-label' }, label), from, text, err);
      });
      if (t.shape.header && t.shape.header.format === 'media') {
        const media = field({ label: `Header ${t.shape.header.kind} link`, type: 'url', testid: 'bc-media', value: draft.content.header_media_url || '', hint: 'The same for every recipient (https://…).' });
        media.input.addEventListener('input', () => {
          draft.content.header_media_url = media.input.value.trim() || undefined;
          media.setError('');
          paintPreview();
        });
        fields.push({ media });
        rows.push(media.root);
      }
      mapping.replaceChildren(
        rows.length ? h('p', { className: 'sf-muted' }, 'Fill each variable for every recipient. A recipient without a name or campaign code for a variable that needs one is skipped.') : h('p', { className: 'sf-muted' }, 'This template has no variables.'),
        ...rows,
      );
      paintPreview();
    };
    choice.input.addEventListener('change', () => {
      choice.setError('');
      paintMapping();
    });
    body.replaceChildren(h('p', { className: 'sf-note' }, icon('info'), h('span', {}, 'Meta numbers broadcast approved templates only: they reach customers whatever their last message.')), choice.root, h('div', { className: 'bc-content' }, mapping, bubble));
    paintMapping();
    return () => {
      const t = chosen();
      choice.setError(t ? '' : 'Choose a template.');
      let ok = Boolean(t);
      for (const f of fields) {
        if (f.media) {
          const bad = !/^https:\/\/\S+$/.test(f.media.input.value.trim());
          f.media.setError(bad ? 'Give the header’s https:// link.' : '');
          ok = ok && !bad;
        } else if (f.from.value === 'text' && !f.text.value.trim()) {
          f.err.textContent = 'Type the text, or fill it from the contact.';
          f.err.hidden = false;
          f.text.setAttribute('aria-invalid', 'true');
          ok = false;
        }
      }
      return ok;
    };
  }

  function textContent() {
    const text = h('textarea', { className: 'input', rows: 5, value: draft.content && draft.content.kind === 'text' ? draft.content.body : '', attrs: { maxlength: '4096', 'aria-required': 'true' } });
    const f = field({ label: 'Message', testid: 'bc-text', control: text, hint: 'Plain text, up to 4,096 characters.' });
    text.value = draft.content && draft.content.kind === 'text' ? draft.content.body : '';
    const bubble = h('div', { className: 'bc-preview', attrs: { 'aria-live': 'polite' }, dataset: { testid: 'bc-preview' } });
    const paint = () => bubble.replaceChildren(h('div', { className: 'tpk-bubble' }, h('p', {}, text.value)));
    text.addEventListener('input', () => {
      draft.content = { kind: 'text', body: text.value };
      f.setError('');
      paint();
    });
    draft.content = { kind: 'text', body: text.value };
    body.replaceChildren(
      h('p', { className: 'sf-note bc-warn', dataset: { testid: 'bc-waha-note' } }, icon('triangle-alert'), h('span', {}, 'A WAHA number sends free text only to customers who wrote in the last 24 hours (their window is open); everyone else in the segment is skipped. Free text to closed windows is what gets unofficial numbers banned.')),
      f.root,
      bubble,
    );
    paint();
    return () => {
      const n = text.value.trim().length;
      f.setError(n ? '' : 'Write the message.');
      return n > 0;
    };
  }

  // ---- step 3: audience ----
  function stepAudience() {
    const seg = field({
      label: 'Segment',
      testid: 'bc-segment',
      control: select([['', 'Choose a segment'], ...segments.map((s) => [s.id, s.name])], draft.segment_id),
      hint: segments.length ? 'The segment’s contacts when sending starts; opted-out contacts are always skipped.' : 'No saved segment yet: save one on the Contacts page first.',
    });
    const out = h('div', { className: 'bc-audience', attrs: { 'aria-live': 'polite' }, dataset: { testid: 'bc-audience' } });
    const show = async () => {
      draft.segment_id = seg.input.value;
      seg.setError('');
      out.replaceChildren();
      if (!draft.segment_id) return;
      const id = draft.segment_id;
      out.replaceChildren(h('p', { className: 'sf-muted' }, 'Counting…'));
      try {
        const p = await request('GET', `/api/segments/${enc(id)}/preview`);
        if (id !== draft.segment_id) return;
        preview = { segment_id: id, count: p.count, contacts: p.contacts || [] };
        out.replaceChildren(
          h('p', { className: 'bc-count', dataset: { testid: 'bc-audience-count' } }, h('strong', {}, String(p.count)), p.count === 1 ? ' contact matches today' : ' contacts match today'),
          preview.contacts.length
            ? h('ul', { className: 'bc-people', attrs: { 'aria-label': `First ${preview.contacts.length} contacts` } }, ...preview.contacts.slice(0, 12).map((c) => h('li', {}, contactName(c.contact) || c.contact.phone || '—')))
            : null,
          preview.contacts.length > 12 ? h('p', { className: 'sf-muted' }, `and ${p.count - 12} more`) : null,
        );
      } catch (err) {
        out.replaceChildren(h('p', { className: 'sf-error' }, err.message || 'The segment could not be counted.'));
      }
    };
    seg.input.addEventListener('change', show);
    body.replaceChildren(seg.root, out);
    show();
    return () => {
      seg.setError(draft.segment_id ? '' : 'Choose who gets it.');
      return Boolean(draft.segment_id);
    };
  }

  // ---- step 4: when ----
  function stepWhen() {
    const choices = [
      ['now', 'Send now', 'Starts as soon as you confirm.'],
      ['later', 'Schedule', 'Starts at a local time in a time zone.'],
      ['draft', 'Save as a draft', 'Nothing is sent; start or schedule it later.'],
    ];
    const radios = h(
      'fieldset',
      { className: 'bc-when' },
      h('legend', {}, 'When'),
      choices.map(([v, label, hint]) =>
        h(
          'label',
          { className: 'sf-check' },
          h('input', { type: 'radio', name: 'bc-when', value: v, checked: draft.when === v, dataset: { testid: `bc-when-${v}` }, onchange: () => setWhen(v) }),
          h('span', {}, h('strong', {}, label), ` — ${hint}`),
        ),
      ),
    );
    const at = field({ label: 'Date and time', type: 'datetime-local', testid: 'bc-send-at', value: draft.send_at });
    const zone = field({ label: 'Time zone', testid: 'bc-zone', control: select(zones(draft.time_zone).map((z) => [z, z]), draft.time_zone), hint: 'The date and time are wall-clock time in this zone.' });
    const later = h('div', { className: 'sf-grid', hidden: draft.when !== 'later' }, at.root, zone.root);
    const days = field({ label: 'Attribution window (days)', type: 'number', testid: 'bc-attribution', value: String(draft.attribution_days), hint: 'Replies, opt-outs and new leads within this many days of a copy count for the broadcast (1–90).', attrs: { min: '1', max: '90', inputmode: 'numeric' } });
    at.input.addEventListener('input', () => {
      draft.send_at = at.input.value;
      at.setError('');
    });
    zone.input.addEventListener('change', () => {
      draft.time_zone = zone.input.value;
    });
    days.input.addEventListener('input', () => {
      draft.attribution_days = Number(days.input.value);
      days.setError('');
    });
    function setWhen(v) {
      draft.when = v;
      later.hidden = v !== 'later';
      paintSteps();
    }
    body.replaceChildren(radios, later, h('div', { className: 'sf-grid' }, days.root));
    return () => {
      const d = Number(days.input.value);
      const daysOk = Number.isInteger(d) && d >= 1 && d <= 90;
      days.setError(daysOk ? '' : 'Give a whole number of days from 1 to 90.');
      const atOk = draft.when !== 'later' || /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(draft.send_at);
      at.setError(atOk ? '' : 'Pick the date and time to send.');
      return daysOk && atOk;
    };
  }

  // ---- step 5: review ----
  function stepReview() {
    const n = number();
    const seg = segments.find((s) => s.id === draft.segment_id);
    const c = draft.content;
    const t = c.kind === 'template' ? templates.find((x) => x.name === c.name && x.language === c.language) : null;
    const rows = [
      ['Name', draft.name.trim()],
      ['From', n ? `${n.label} (${n.provider === 'waha' ? 'WAHA' : 'Meta'})` : draft.number_id],
      ['Content', c.kind === 'template' ? `Template ${c.name} (${c.language})` : 'Free text (open 24-hour windows only)'],
      ...(c.kind === 'template' ? c.variables.map((v, i) => [`{{${i + 1}}}`, sourceWords(v)]) : []),
      ['Audience', `${seg ? seg.name : '—'}${preview && preview.segment_id === draft.segment_id ? ` · ${preview.count} contacts today` : ''}`],
      ['When', draft.when === 'now' ? 'Now' : draft.when === 'later' ? `${draft.send_at.replace('T', ' ')} (${draft.time_zone})` : 'Not yet (draft)'],
      ['Attribution', `${draft.attribution_days} days`],
    ];
    const text = c.kind === 'template' ? (t ? fillText(t.shape.body, c.variables.map((v) => (v.source === 'text' ? v.value : `[${sourceWords(v)}]`))) : '') : c.body;
    body.replaceChildren(
      h('dl', { className: 'bc-facts', dataset: { testid: 'bc-review' } }, rows.map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, v)))),
      h('div', { className: 'bc-preview' }, h('p', { className: 'bc-preview-label' }, 'Message'), h('div', { className: 'tpk-bubble' }, h('p', {}, text))),
      draft.when === 'now' ? h('p', { className: 'sf-note' }, icon('info'), h('span', {}, 'Sending starts when you confirm, at the number’s pace; you can pause or cancel it from the broadcast’s page.')) : null,
    );
    return () => true;
  }

  async function save() {
    const payload = {
      name: draft.name.trim(),
      number_id: draft.number_id,
      content: draft.content,
      segment_id: draft.segment_id,
      attribution_days: draft.attribution_days,
    };
    nextBtn.disabled = true;
    try {
      let b;
      if (existing) ({ broadcast: b } = await request('PUT', `/api/broadcasts/${enc(existing.id)}`, { body: payload }));
      else ({ broadcast: b } = await request('POST', '/api/broadcasts', { body: payload }));
      existing = b; // a retry after a failed start edits this one instead of making another
      const path = `/api/broadcasts/${enc(b.id)}`;
      if (draft.when === 'now') ({ broadcast: b } = await request('POST', `${path}/send`, { body: {} }));
      else if (draft.when === 'later') ({ broadcast: b } = await request('POST', `${path}/schedule`, { body: { send_at: draft.send_at, time_zone: draft.time_zone } }));
      else if (b.state === 'scheduled') ({ broadcast: b } = await request('POST', `${path}/unschedule`, { body: {} }));
      onDone(b);
    } catch (err) {
      error.show(err.message || 'The broadcast could not be saved.');
    } finally {
      nextBtn.disabled = false;
    }
  }

  return {
    element,
    async start() {
      body.replaceChildren(h('p', { className: 'sf-muted' }, 'Loading numbers, templates and segments…'));
      try {
        await load();
      } catch (err) {
        error.show(err.message || 'The wizard could not load its choices.');
        return;
      }
      go(0);
    },
  };
}
