/*
 * Tags and marketing consent of the open conversation's contact, inside the
 * details panel (lead-panel.js; issue 17 §3, docs/contacts.md): the tags as chips,
 * each with a remove button, and a picker that adds an existing tag (leads.edit:
 * PUT /api/contacts/{id}/tags); the consent state with its source, and a link to
 * the contact on the Contacts page. A `contact_tags` frame (another agent changed
 * the tags) repaints it at once. Creating tags is the Contacts page's
 * (campaigns.manage); without leads.edit the chips are read-only.
 */
import { h, icon } from './dom.js';
import { toastError } from './toast.js';
import { can } from './permissions.js';
import { consentBadge, tagChip } from './contacts-data.js';

const enc = encodeURIComponent;

/**
 * @param {{contacts: ReturnType<import('./contacts-data.js').createContactsApi>,
 *          me: object, signal: AbortSignal, withLink?: boolean}} opts  withLink:
 *   show the consent line and the "Open in Contacts" link (the inbox panel; the
 *   Contacts page shows consent in full itself)
 */
export function setupContactTags({ contacts, me, signal, withLink = true }) {
  const editable = can(me, 'leads.edit');
  let contactId = null;
  let summary = null;
  let seq = 0;
  let busy = false;

  const chips = h('ul', { className: 'ct-tags', dataset: { testid: 'contact-tags' }, attrs: { 'aria-label': 'Tags' } });
  const picker = h('select', { dataset: { testid: 'contact-tag-picker' }, attrs: { 'aria-label': 'Tag to add' } });
  const addBtn = h('button', { type: 'button', className: 'btn btn-small', dataset: { testid: 'contact-tag-add' }, onclick: add }, icon('plus'), 'Add tag');
  const addRow = h('div', { className: 'ct-tag-add', hidden: !editable }, picker, addBtn);
  const consent = h('p', { className: 'ct-consent-line', dataset: { testid: 'contact-consent' } });
  const link = h('a', { className: 'ct-open', dataset: { testid: 'contact-open' } }, icon('users'), 'Open in Contacts');
  const status = h('p', { className: 'sr-only', attrs: { role: 'status' } });
  const element = h(
    'div',
    { className: 'ct-panel', dataset: { testid: 'contact-tags-panel' } },
    h('h4', {}, 'Tags'),
    chips,
    addRow,
    withLink ? [h('h4', {}, 'Marketing'), consent, link] : null,
    status,
  );

  async function load() {
    const mine = ++seq;
    try {
      const [detail, all] = await Promise.all([contacts.detail(contactId), contacts.tags()]);
      if (mine !== seq || signal.aborted) return;
      summary = detail;
      paint(all);
    } catch (err) {
      if (mine === seq && err.status !== 401 && err.status !== 404) toastError(err);
    }
  }

  function paint(all) {
    const tags = (summary && summary.tags) || [];
    chips.replaceChildren(
      ...(tags.length
        ? tags.map((t) => h('li', {}, tagChip(t, editable ? () => remove(t) : null)))
        : [h('li', { className: 'muted' }, 'No tags')]),
    );
    const have = new Set(tags.map((t) => t.id));
    const free = (all || []).filter((t) => !have.has(t.id));
    picker.replaceChildren(
      h('option', { value: '' }, free.length ? 'Choose a tag…' : 'No other tags'),
      ...free.map((t) => h('option', { value: t.id }, t.name)),
    );
    picker.disabled = !free.length || busy;
    addBtn.disabled = !free.length || busy;
    consent.replaceChildren(summary ? consentBadge(summary.consent) : '');
    link.href = `#/contacts/c/${enc(contactId)}`;
  }

  async function save(tagIds, said) {
    busy = true;
    try {
      summary = await contacts.setTags(contactId, tagIds);
      status.textContent = said;
    } catch (err) {
      if (err.status !== 401) toastError(err);
    } finally {
      busy = false;
      paint(await contacts.tags().catch(() => []));
    }
  }

  function add() {
    const id = picker.value;
    if (!id || !summary) return;
    const tag = picker.selectedOptions[0].textContent;
    save([...summary.tags.map((t) => t.id), id], `Tag ${tag} added.`);
  }

  function remove(tag) {
    if (!summary) return;
    save(summary.tags.filter((t) => t.id !== tag.id).map((t) => t.id), `Tag ${tag.name} removed.`);
  }

  /** Follows the open conversation `conv` (null: none); loads only when the contact changes. */
  function follow(conv) {
    const id = (conv && conv.contact && conv.contact.id) || null;
    if (id === contactId) return;
    contactId = id;
    summary = null;
    seq++;
    chips.replaceChildren();
    consent.replaceChildren();
    if (id) load();
  }

  /** `contact_tags`: another agent (or this one, elsewhere) changed the tags. */
  async function onFrame(f) {
    if (f.type !== 'contact_tags' || f.contact_id !== contactId || !summary) return;
    summary = { ...summary, tags: f.tags || [] };
    let all = await contacts.tags().catch(() => []);
    // A tag made since the cache was filled: fetch the list again.
    if (summary.tags.some((t) => !all.some((a) => a.id === t.id))) all = await contacts.refreshTags().catch(() => all);
    paint(all);
  }

  /** Loads the contact again (its consent changed). */
  function reload() {
    if (contactId) load();
  }

  return { element, follow, onFrame, reload };
}
