/*
 * The Contacts page (#/contacts…, issue 17 §3, docs/contacts.md) for agents with
 * leads.read. Three views behind one set of tabs:
 * - #/contacts — search by name or phone; each contact with its channel, tags,
 *   marketing consent (and where it came from) and last message; with
 *   campaigns.manage, tick several and add or remove a tag on all of them;
 * - #/contacts/c/{id} — one contact: facts, tags (contact-tags.js, editable with
 *   leads.edit), consent and its history, and the consent editor
 *   (campaigns.manage: PUT /api/contacts/{id}/consent);
 * - #/contacts/segments — the segment builder (segment-builder.js);
 * - #/contacts/tags — create, rename and delete tags (tag-manager.js).
 *
 * Mounted like tasks-page.js: a page that replaces the inbox layout while the hash
 * is #/contacts…. `contact_tags` frames repaint a listed contact's tags.
 */
import { h, icon } from './dom.js';
import { formatFull, timeElement } from './format.js';
import { toast, toastError } from './toast.js';
import { can } from './permissions.js';
import { contactName } from './contact.js';
import { CHANNELS, CONSENT, CONSENT_SOURCE, consentBadge, consentSentence, contactRow } from './contacts-data.js';
import { setupContactTags } from './contact-tags.js';
import { setupSegmentBuilder } from './segment-builder.js';
import { setupTagManager } from './tag-manager.js';

const enc = encodeURIComponent;
const PAGE = 50;

/**
 * @param {{contacts: ReturnType<import('./contacts-data.js').createContactsApi>,
 *          data: ReturnType<import('./leads-data.js').createLeadsData>, me: object,
 *          agentName: (id: string) => string, navigate: (hash: string) => void,
 *          signal: AbortSignal}} opts
 */
export function setupContactsPage({ contacts, data, me, agentName, navigate, signal }) {
  const layout = document.querySelector('.layout');
  const manage = can(me, 'campaigns.manage');
  let visible = false;
  let view = '';
  let rows = [];
  let total = 0;
  let seq = 0;
  let searchTimer = 0;
  const selected = new Set();

  // ---- tabs
  const tabs = [
    ['', 'Contacts', 'users'],
    ['segments', 'Segments', 'list-checks'],
    ['tags', 'Tags', 'tag'],
  ].map(([key, text, ic]) =>
    h('a', { href: key ? `#/contacts/${key}` : '#/contacts', className: 'btn btn-ghost ct-tab', dataset: { tab: key, testid: `contacts-tab-${key || 'list'}` } }, icon(ic), text),
  );

  // ---- the list
  const search = h('input', { type: 'search', placeholder: 'Name or phone', autocomplete: 'off', dataset: { testid: 'contacts-search' } });
  search.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => load(), 250);
  });
  const searchForm = h(
    'form',
    { className: 'ct-search', attrs: { role: 'search', 'aria-label': 'Find contacts' }, onsubmit: (e) => (e.preventDefault(), load()) },
    h('label', { className: 'team-field' }, h('span', {}, 'Search'), search),
  );
  const bulkTag = h('select', { dataset: { testid: 'bulk-tag' }, attrs: { 'aria-label': 'Tag' } });
  const bulkCount = h('span', { className: 'ct-bulk-count', dataset: { testid: 'bulk-count' }, attrs: { 'aria-live': 'polite' } });
  const bulkAdd = h('button', { type: 'button', className: 'btn btn-small btn-primary', dataset: { testid: 'bulk-add' }, onclick: () => bulk(true) }, icon('plus'), 'Add tag');
  const bulkRemove = h('button', { type: 'button', className: 'btn btn-small', dataset: { testid: 'bulk-remove' }, onclick: () => bulk(false) }, icon('x'), 'Remove tag');
  const bulkClear = h('button', { type: 'button', className: 'btn btn-small btn-ghost', onclick: () => (selected.clear(), paint()) }, 'Clear selection');
  const bulkBar = h(
    'div',
    { className: 'ct-bulk', hidden: !manage, dataset: { testid: 'bulk-bar' }, attrs: { role: 'group', 'aria-label': 'Tag the selected contacts' } },
    bulkCount,
    bulkTag,
    bulkAdd,
    bulkRemove,
    bulkClear,
  );
  const allBox = h('input', { type: 'checkbox', attrs: { 'aria-label': 'Select every listed contact' }, dataset: { testid: 'contact-select-all' }, onchange: (e) => selectAll(e.target.checked) });
  const listHead = h(
    'div',
    { className: 'ct-row ct-head', attrs: { 'aria-hidden': 'true' } },
    manage ? h('span', { className: 'ct-row-select' }) : null,
    h('span', {}, 'Contact'),
    h('span', {}, 'Channel'),
    h('span', {}, 'Tags'),
    h('span', {}, 'Marketing'),
    h('span', {}, 'Last message'),
  );
  const list = h('ul', { className: 'ct-list', dataset: { testid: 'contacts-list' }, attrs: { 'aria-label': 'Contacts' } });
  const listStatus = h('p', { className: 'ct-status', dataset: { testid: 'contacts-status' }, attrs: { role: 'status' } });
  const more = h('button', { type: 'button', className: 'btn', hidden: true, onclick: () => load(true) }, 'Show more');
  const listView = h(
    'div',
    { className: 'ct-view', dataset: { testid: 'contacts-list-view' } },
    searchForm,
    manage ? h('label', { className: 'ct-select-all' }, allBox, h('span', {}, 'Select all listed')) : null,
    bulkBar,
    listStatus,
    h('div', { className: 'ct-table' }, listHead, list),
    more,
  );

  // ---- one contact
  const tagsPart = setupContactTags({ contacts, me, signal, withLink: false });
  const detailTitle = h('h2', { className: 'ct-detail-name', dataset: { testid: 'contact-detail-name' }, tabIndex: -1 });
  const facts = h('dl', { className: 'lead-facts ct-facts' });
  const consentNow = h('p', { className: 'ct-consent-now', dataset: { testid: 'consent-now' } });
  const history = h('ol', { className: 'ct-history', dataset: { testid: 'consent-history' }, attrs: { 'aria-label': 'Consent history, newest first' } });
  const note = h('input', { type: 'text', maxLength: 200, dataset: { testid: 'consent-note' } });
  const radios = ['opted_in', 'opted_out'].map((state) =>
    h('label', { className: 'ct-radio' }, h('input', { type: 'radio', name: 'ct-consent', value: state, dataset: { testid: `consent-${state}` } }), h('span', {}, CONSENT[state].label)),
  );
  const consentSave = h('button', { type: 'submit', className: 'btn btn-primary', dataset: { testid: 'consent-save' } }, 'Save consent');
  const consentForm = h(
    'form',
    { className: 'ct-consent-form', hidden: !manage, dataset: { testid: 'consent-form' }, onsubmit: saveConsent },
    h('fieldset', { className: 'ct-radios' }, h('legend', {}, 'Marketing messages'), radios),
    h('label', { className: 'team-field' }, h('span', {}, 'Note (optional)'), note),
    h('div', { className: 'sf-actions' }, consentSave),
  );
  let detailId = null;
  let detail = null;
  const detailView = h(
    'article',
    { className: 'ct-view ct-detail', dataset: { testid: 'contact-detail' }, attrs: { 'aria-labelledby': 'ct-detail-name' } },
    h('a', { href: '#/contacts', className: 'btn btn-ghost ct-detail-back' }, icon('arrow-left'), 'All contacts'),
    detailTitle,
    facts,
    h('section', { className: 'ct-section', attrs: { 'aria-label': 'Tags' } }, tagsPart.element),
    h('section', { className: 'ct-section', attrs: { 'aria-labelledby': 'ct-consent-title' } },
      h('h3', { id: 'ct-consent-title' }, 'Marketing consent'),
      consentNow,
      consentForm,
      h('h4', {}, 'History'),
      history),
  );
  detailTitle.id = 'ct-detail-name';

  const segments = setupSegmentBuilder({ contacts, data, me, signal });
  const tagManager = setupTagManager({ contacts, me, signal, onChange: () => refreshTagChoices() });

  const back = h('a', { href: '#/', className: 'btn btn-ghost' }, icon('arrow-left'), 'Inbox');
  const page = h(
    'main',
    { id: 'contacts-page', className: 'team-page contacts-page', hidden: true, dataset: { testid: 'contacts-page' }, attrs: { 'aria-labelledby': 'contacts-title' } },
    h('header', { className: 'team-page-head' }, back, h('h1', { id: 'contacts-title', className: 'team-title', tabIndex: -1 }, 'Contacts')),
    h('nav', { className: 'ct-tabs', attrs: { 'aria-label': 'Contacts sections' } }, tabs),
    listView,
    detailView,
    segments.element,
    tagManager.element,
  );
  document.getElementById('app').append(page);
  signal.addEventListener('abort', () => page.remove());

  // ---- list behaviour

  async function load(append = false) {
    const mine = ++seq;
    const offset = append ? rows.length : 0;
    try {
      const body = await contacts.list({ q: search.value.trim() || undefined, limit: PAGE, offset });
      if (mine !== seq || signal.aborted) return;
      rows = append ? rows.concat(body.contacts || []) : body.contacts || [];
      total = body.total || 0;
      if (!append) selected.clear();
      paint();
    } catch (err) {
      if (mine === seq && err.status !== 401) toastError(err);
    }
  }

  function paint() {
    list.replaceChildren(
      ...rows.map((s) =>
        contactRow(s, {
          selectable: manage,
          selected: selected.has(s.contact.id),
          onSelect(on) {
            if (on) selected.add(s.contact.id);
            else selected.delete(s.contact.id);
            paintBulk();
          },
        }),
      ),
    );
    if (!rows.length) list.append(h('li', { className: 'empty' }, search.value.trim() ? 'No contact matches.' : 'No contacts yet.'));
    listStatus.textContent = `${total} ${total === 1 ? 'contact' : 'contacts'}${rows.length < total ? `, ${rows.length} shown` : ''}.`;
    more.hidden = rows.length >= total;
    paintBulk();
  }

  function paintBulk() {
    const n = selected.size;
    bulkCount.textContent = `${n} selected`;
    const none = n === 0 || !bulkTag.value;
    bulkAdd.disabled = none;
    bulkRemove.disabled = none;
    bulkClear.disabled = n === 0;
    allBox.checked = rows.length > 0 && rows.every((s) => selected.has(s.contact.id));
  }
  bulkTag.addEventListener('change', paintBulk);

  function selectAll(on) {
    for (const s of rows) {
      if (on) selected.add(s.contact.id);
      else selected.delete(s.contact.id);
    }
    paint();
  }

  async function refreshTagChoices() {
    const tags = await contacts.refreshTags().catch(() => []);
    const keep = bulkTag.value;
    bulkTag.replaceChildren(h('option', { value: '' }, tags.length ? 'Choose a tag…' : 'No tags yet'), ...tags.map((t) => h('option', { value: t.id }, t.name)));
    bulkTag.value = tags.some((t) => t.id === keep) ? keep : '';
    paintBulk();
  }

  async function bulk(add) {
    const tag = bulkTag.value;
    if (!tag || !selected.size) return;
    const name = bulkTag.selectedOptions[0].textContent;
    bulkAdd.disabled = true;
    bulkRemove.disabled = true;
    try {
      const { changed } = await contacts.bulk(tag, add, [...selected]);
      toast(`${add ? 'Added' : 'Removed'} ${name} ${add ? 'to' : 'from'} ${changed} ${changed === 1 ? 'contact' : 'contacts'}.`, 'success');
      await load();
      contacts.refreshTags().catch(() => {});
    } catch (err) {
      if (err.status !== 401) toastError(err);
      paintBulk();
    }
  }

  // ---- one contact

  async function loadDetail(id) {
    const mine = ++seq;
    detailId = id;
    tagsPart.follow({ contact: { id } });
    try {
      const body = await contacts.detail(id);
      if (mine !== seq || signal.aborted) return;
      detail = body;
      paintDetail();
    } catch (err) {
      if (mine !== seq) return;
      if (err.status === 404) {
        toast('That contact is not one you can see.', 'error');
        navigate('#/contacts');
      } else if (err.status !== 401) toastError(err);
    }
  }

  function paintDetail() {
    const s = detail;
    const c = s.contact || {};
    detailTitle.textContent = contactName(c);
    const rowsOut = [];
    const add = (label, value) => value && rowsOut.push(h('dt', {}, label), h('dd', {}, value));
    add('Phone', c.phone);
    add('Email', c.email);
    add('Channel', s.channel ? CHANNELS[s.channel] || s.channel : '');
    add('Lead stage', s.lead_stage);
    add('Created', formatFull(s.created_at));
    add('Last message', s.last_message_at ? formatFull(s.last_message_at) : '');
    if (s.conversation_id && can(me, 'conversations.read_team')) {
      rowsOut.push(h('dt', {}, 'Conversation'), h('dd', {}, h('a', { href: `#/c/${enc(s.conversation_id)}` }, 'Open the latest conversation')));
    }
    facts.replaceChildren(...rowsOut);
    consentNow.replaceChildren(consentBadge(s.consent), ' ', h('span', {}, consentSentence(s.consent, agentName)));
    for (const r of radios) {
      const input = r.querySelector('input');
      input.checked = input.value === s.consent.state;
    }
    note.value = '';
    const events = s.consent_history || [];
    history.replaceChildren(
      ...(events.length
        ? events.map((e) =>
            h(
              'li',
              { dataset: { testid: 'consent-event', state: e.state } },
              h('span', { className: `badge ${(CONSENT[e.state] || CONSENT.unknown).tone}` }, (CONSENT[e.state] || CONSENT.unknown).label),
              h('span', {}, CONSENT_SOURCE[e.source] || e.source),
              e.actor_id ? h('span', {}, agentName(e.actor_id)) : null,
              e.detail ? h('span', { className: 'ct-history-detail' }, `“${e.detail}”`) : null,
              timeElement(e.at),
            ),
          )
        : [h('li', { className: 'muted' }, 'No change recorded yet.')]),
    );
  }

  async function saveConsent(e) {
    e.preventDefault();
    const chosen = radios.map((r) => r.querySelector('input')).find((i) => i.checked);
    if (!chosen || !detailId) return;
    consentSave.disabled = true;
    try {
      await contacts.setConsent(detailId, chosen.value, note.value.trim());
      toast(`Consent saved: ${CONSENT[chosen.value].label}.`, 'success');
      await loadDetail(detailId);
      tagsPart.reload();
    } catch (err) {
      if (err.status !== 401) toastError(err);
    } finally {
      consentSave.disabled = false;
    }
  }

  // ---- routing

  /** Shows the view for the part of the hash after #/contacts/ ('' = the list). */
  function show(sub = '', backHref = '#/') {
    back.href = backHref;
    const first = !visible;
    visible = true;
    page.hidden = false;
    layout.hidden = true;
    const m = /^c\/(.+)$/.exec(sub);
    view = m ? 'detail' : sub === 'segments' || sub === 'tags' ? sub : '';
    for (const t of tabs) {
      const on = t.dataset.tab === (view === 'detail' ? '' : view);
      if (on) t.setAttribute('aria-current', 'page');
      else t.removeAttribute('aria-current');
    }
    listView.hidden = view !== '';
    detailView.hidden = view !== 'detail';
    segments.element.hidden = view !== 'segments';
    tagManager.element.hidden = view !== 'tags';
    if (view === '') {
      refreshTagChoices();
      load();
    } else if (view === 'detail') {
      loadDetail(decodeURIComponent(m[1])).then(() => detailTitle.focus({ preventScroll: true }));
    } else if (view === 'segments') segments.show();
    else tagManager.show();
    if (first && view !== 'detail') document.getElementById('contacts-title').focus({ preventScroll: true });
  }

  function hide() {
    if (!visible) return;
    visible = false;
    page.hidden = true;
    layout.hidden = false;
  }

  /** `contact_tags`: a listed contact's tags changed. */
  function onFrame(f) {
    if (f.type !== 'contact_tags') return;
    tagsPart.onFrame(f);
    if (!visible) return;
    const row = rows.find((s) => s.contact.id === f.contact_id);
    if (row) {
      row.tags = f.tags || [];
      paint();
    }
  }

  return { show, hide, onFrame, isVisible: () => visible };
}
