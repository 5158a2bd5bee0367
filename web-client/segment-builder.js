/*
 * The segment builder (#/contacts/segments, issue 17 §3, docs/contacts.md
 * "Segments"): saved segments on one side; on the other a filter — tags (any of /
 * all of / none of, per tag), channels, WhatsApp numbers (listed for
 * accounts.manage, who may read them), lead stages (every pipeline the agent
 * sees), lead sources, campaign codes, created and last-message date ranges,
 * marketing consent — with a live preview: how many contacts match and the first
 * 50 (POST /api/segments/preview, a moment after each change; the hub's refusal
 * of a filter is shown in words). With campaigns.manage: save it under a name
 * (POST/PUT /api/segments), open a saved one to change it, delete one (a second
 * click confirms).
 */
import { h, icon } from './dom.js';
import { toast, toastError } from './toast.js';
import { can } from './permissions.js';
import { CHANNELS, LEAD_SOURCES, contactRow } from './contacts-data.js';

const TAG_MODES = [
  ['', '—'],
  ['any', 'Any of'],
  ['all', 'All of'],
  ['none', 'None of'],
];
const CONSENT_CHOICES = [
  ['', 'Any'],
  ['opted_in', 'Opted in'],
  ['not_opted_out', 'Not opted out'],
  ['unknown', 'Never asked'],
  ['opted_out', 'Opted out'],
];

/** `YYYY-MM-DD` (a date input's value) as epoch ms: the day's start, or its end. */
export function dayMs(value, end = false) {
  if (!value) return undefined;
  const d = new Date(`${value}T${end ? '23:59:59.999' : '00:00:00'}`);
  return Number.isNaN(d.getTime()) ? undefined : d.getTime();
}

/** Epoch ms as a date input's value (local day). */
function dayValue(ms) {
  if (ms === undefined || ms === null) return '';
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

let uid = 0;

/** A fieldset of checkboxes `[value, label]`; `.values()` and `.set(values)`. */
function checkGroup(legend, choices, testid) {
  const boxes = choices.map(([value, label]) =>
    h('label', { className: 'ct-check' }, h('input', { type: 'checkbox', value, dataset: { testid: `${testid}-option`, value } }), h('span', {}, label)),
  );
  const el = h('fieldset', { className: 'ct-fieldset', dataset: { testid } }, h('legend', {}, legend), h('div', { className: 'ct-checks' }, boxes));
  return {
    el,
    values: () => boxes.map((b) => b.querySelector('input')).filter((i) => i.checked).map((i) => i.value),
    set(values = []) {
      for (const b of boxes) {
        const i = b.querySelector('input');
        i.checked = values.includes(i.value);
      }
    },
  };
}

/** A from/to pair of date inputs; `.range()` and `.set(range)`. */
function dateRange(legend, testid) {
  const n = ++uid;
  const from = h('input', { type: 'date', id: `seg-${testid}-from-${n}`, dataset: { testid: `${testid}-from` } });
  const to = h('input', { type: 'date', id: `seg-${testid}-to-${n}`, dataset: { testid: `${testid}-to` } });
  const el = h(
    'fieldset',
    { className: 'ct-fieldset ct-range' },
    h('legend', {}, legend),
    h('label', { className: 'team-field' }, h('span', {}, 'From'), from),
    h('label', { className: 'team-field' }, h('span', {}, 'To'), to),
  );
  return {
    el,
    range() {
      const r = { from_ms: dayMs(from.value), to_ms: dayMs(to.value, true) };
      return r.from_ms === undefined && r.to_ms === undefined ? undefined : r;
    },
    set(r = {}) {
      from.value = dayValue(r.from_ms);
      to.value = dayValue(r.to_ms);
    },
  };
}

/**
 * @param {{contacts: ReturnType<import('./contacts-data.js').createContactsApi>,
 *          data: ReturnType<import('./leads-data.js').createLeadsData>, me: object,
 *          signal: AbortSignal}} opts
 */
export function setupSegmentBuilder({ contacts, data, me, signal }) {
  const manage = can(me, 'campaigns.manage');
  let segments = [];
  let editingId = null;
  let confirming = null;
  let previewSeq = 0;
  let timer = 0;
  let tagRows = []; // [{tag, select}]

  const saved = h('ul', { className: 'ct-seg-list', dataset: { testid: 'segment-list' }, attrs: { 'aria-label': 'Saved segments' } });
  const name = h('input', { type: 'text', maxLength: 80, dataset: { testid: 'segment-name' } });
  const tagBox = h('div', { className: 'ct-seg-tags', dataset: { testid: 'segment-tags' } });
  const channels = checkGroup('Channel', Object.entries(CHANNELS), 'segment-channels');
  const sources = checkGroup('Lead source', LEAD_SOURCES.map((s) => [s, s.replace('_', ' ')]), 'segment-sources');
  let stages = checkGroup('Lead stage', [], 'segment-stages');
  let numbers = checkGroup('WhatsApp number', [], 'segment-numbers');
  const stageSlot = h('div', {}, stages.el);
  const numberSlot = h('div', { hidden: true }, numbers.el);
  const codes = h('input', { type: 'text', placeholder: 'UMR_MAR_2025, …', dataset: { testid: 'segment-codes' } });
  const created = dateRange('Contact created', 'segment-created');
  const lastMessage = dateRange('Last message', 'segment-last');
  const consent = h('select', { dataset: { testid: 'segment-consent' } }, CONSENT_CHOICES.map(([v, t]) => h('option', { value: v }, t)));
  const saveBtn = h('button', { type: 'submit', className: 'btn btn-primary', dataset: { testid: 'segment-save' } }, 'Save segment');
  const newBtn = h('button', { type: 'button', className: 'btn', dataset: { testid: 'segment-new' }, onclick: () => edit(null) }, icon('plus'), 'New segment');
  const heading = h('h3', { className: 'ct-seg-heading', dataset: { testid: 'segment-heading' } }, 'New segment');
  const form = h(
    'form',
    { className: 'ct-seg-form', dataset: { testid: 'segment-form' }, attrs: { 'aria-labelledby': 'ct-seg-heading' }, onsubmit: save },
    heading,
    h('label', { className: 'team-field', hidden: !manage }, h('span', {}, 'Name'), name),
    h('fieldset', { className: 'ct-fieldset' }, h('legend', {}, 'Tags'), tagBox),
    channels.el,
    numberSlot,
    stageSlot,
    sources.el,
    h('label', { className: 'team-field' }, h('span', {}, 'Campaign codes (comma-separated)'), codes),
    h('div', { className: 'ct-ranges' }, created.el, lastMessage.el),
    h('label', { className: 'team-field' }, h('span', {}, 'Marketing consent'), consent),
    manage ? h('div', { className: 'sf-actions' }, saveBtn) : null,
  );
  heading.id = 'ct-seg-heading';
  const count = h('p', { className: 'ct-seg-count', dataset: { testid: 'segment-count' }, attrs: { role: 'status' } });
  const previewList = h('ul', { className: 'ct-list ct-seg-preview', dataset: { testid: 'segment-preview' }, attrs: { 'aria-label': 'First 50 matching contacts' } });
  const element = h(
    'section',
    { className: 'ct-view', hidden: true, dataset: { testid: 'segment-builder' }, attrs: { 'aria-labelledby': 'ct-segments-title' } },
    h('h2', { id: 'ct-segments-title', className: 'ct-view-title' }, 'Segments'),
    h(
      'div',
      { className: 'ct-seg-layout' },
      h('div', { className: 'ct-seg-saved' }, h('h3', {}, 'Saved'), saved, manage ? newBtn : null),
      form,
      h('div', { className: 'ct-seg-result' }, h('h3', {}, 'Preview'), count, previewList),
    ),
  );
  form.addEventListener('input', schedule);
  form.addEventListener('change', schedule);

  /** The filter the form describes (only what is set). */
  function filter() {
    const f = {};
    const tags = { any: [], all: [], none: [] };
    for (const { tag, select } of tagRows) if (select.value) tags[select.value].push(tag.id);
    const t = Object.fromEntries(Object.entries(tags).filter(([, v]) => v.length));
    if (Object.keys(t).length) f.tags = t;
    const lists = {
      channels: channels.values(),
      number_ids: numbers.values(),
      lead_stages: stages.values(),
      lead_sources: sources.values(),
      campaign_codes: codes.value.split(/[\s,]+/).filter(Boolean),
    };
    for (const [k, v] of Object.entries(lists)) if (v.length) f[k] = v;
    const c = created.range();
    if (c) f.created = c;
    const l = lastMessage.range();
    if (l) f.last_message = l;
    if (consent.value) f.consent = consent.value;
    return f;
  }

  function setFilter(f = {}) {
    const tags = f.tags || {};
    for (const { tag, select } of tagRows) {
      select.value = ['any', 'all', 'none'].find((m) => (tags[m] || []).includes(tag.id)) || '';
    }
    channels.set(f.channels);
    numbers.set(f.number_ids);
    stages.set(f.lead_stages);
    sources.set(f.lead_sources);
    codes.value = (f.campaign_codes || []).join(', ');
    created.set(f.created);
    lastMessage.set(f.last_message);
    consent.value = f.consent || '';
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(preview, 300);
  }

  async function preview() {
    const mine = ++previewSeq;
    count.textContent = 'Counting…';
    try {
      const body = await contacts.preview(filter());
      if (mine !== previewSeq || signal.aborted) return;
      count.dataset.count = String(body.count);
      count.textContent = `${body.count} ${body.count === 1 ? 'contact matches' : 'contacts match'}${body.count > 50 ? ' (the first 50 below)' : ''}.`;
      previewList.replaceChildren(...(body.contacts || []).map((s) => contactRow(s)));
    } catch (err) {
      if (mine !== previewSeq) return;
      delete count.dataset.count;
      count.textContent = err.status === 401 ? '' : `Cannot preview: ${err.message}`;
      previewList.replaceChildren();
    }
  }

  async function loadChoices() {
    const tags = await contacts.refreshTags();
    tagRows = tags.map((tag) => {
      const select = h('select', { attrs: { 'aria-label': `Tag ${tag.name}` }, dataset: { testid: 'segment-tag', tag: tag.name } }, TAG_MODES.map(([v, t]) => h('option', { value: v }, t)));
      return { tag, select };
    });
    tagBox.replaceChildren(
      ...(tagRows.length
        ? tagRows.map(({ tag, select }) => h('div', { className: 'ct-seg-tag' }, h('span', { className: 'chip ct-tag' }, icon('tag'), h('span', {}, tag.name)), select))
        : [h('p', { className: 'muted' }, 'No tags yet.')]),
    );
    await data.load();
    const byKey = new Map();
    for (const team of data.teams()) {
      for (const s of await data.stages(team.id).catch(() => [])) if (!byKey.has(s.key)) byKey.set(s.key, s.name);
    }
    stages = checkGroup('Lead stage', [...byKey.entries()], 'segment-stages');
    stageSlot.replaceChildren(stages.el);
    if (can(me, 'accounts.manage')) {
      const body = await contacts.request('GET', '/api/whatsapp/numbers').catch(() => ({ numbers: [] }));
      const list = (body.numbers || []).filter((n) => n.active);
      numbers = checkGroup('WhatsApp number', list.map((n) => [n.id, n.label || n.id]), 'segment-numbers');
      numberSlot.replaceChildren(numbers.el);
      numberSlot.hidden = !list.length;
    }
  }

  async function loadSaved() {
    const body = await contacts.segments();
    segments = body.segments || [];
    paintSaved();
  }

  function paintSaved() {
    saved.replaceChildren(
      ...(segments.length
        ? segments.map((s) => {
            const confirm = confirming === s.id;
            return h(
              'li',
              { className: `ct-seg-item${s.id === editingId ? ' is-current' : ''}`, dataset: { testid: 'segment-item', name: s.name } },
              h('button', { type: 'button', className: 'btn btn-ghost ct-seg-open', attrs: { 'aria-current': s.id === editingId ? 'true' : 'false' }, onclick: () => edit(s) }, s.name),
              manage
                ? h(
                    'button',
                    { type: 'button', className: `btn btn-small ${confirm ? 'btn-danger' : ''}`, dataset: { testid: 'segment-delete' }, attrs: { 'aria-label': confirm ? `Really delete ${s.name}?` : `Delete ${s.name}` }, onclick: () => remove(s) },
                    confirm ? 'Really delete?' : 'Delete',
                  )
                : null,
            );
          })
        : [h('li', { className: 'muted' }, 'No saved segments yet.')]),
    );
  }

  function edit(s) {
    editingId = s ? s.id : null;
    confirming = null;
    name.value = s ? s.name : '';
    heading.textContent = s ? `Segment: ${s.name}` : 'New segment';
    saveBtn.textContent = s ? 'Save changes' : 'Save segment';
    setFilter(s ? s.filter : {});
    paintSaved();
    preview();
  }

  async function save(e) {
    e.preventDefault();
    if (!manage) return;
    if (!name.value.trim()) {
      name.setAttribute('aria-invalid', 'true');
      name.focus();
      toast('Give the segment a name first.', 'error');
      return;
    }
    name.removeAttribute('aria-invalid');
    saveBtn.disabled = true;
    try {
      const body = await contacts.saveSegment(editingId, name.value.trim(), filter());
      toast(`Segment ${body.segment.name} saved.`, 'success');
      await loadSaved();
      edit(segments.find((s) => s.id === body.segment.id) || body.segment);
    } catch (err) {
      if (err.status !== 401) toastError(err);
    } finally {
      saveBtn.disabled = false;
    }
  }

  async function remove(s) {
    if (confirming !== s.id) {
      confirming = s.id;
      paintSaved();
      return;
    }
    confirming = null;
    try {
      await contacts.deleteSegment(s.id);
      toast(`Segment ${s.name} deleted.`, 'success');
      if (editingId === s.id) edit(null);
      await loadSaved();
    } catch (err) {
      if (err.status !== 401) toastError(err);
    }
  }

  return {
    element,
    async show() {
      try {
        const keep = filter();
        await Promise.all([loadChoices(), loadSaved()]);
        if (signal.aborted) return;
        setFilter(keep);
        paintSaved();
        preview();
      } catch (err) {
        if (err.status !== 401) toastError(err);
      }
    },
  };
}
