/*
 * Contacts, tags and consent shared by the Contacts page (contacts-page.js,
 * segment-builder.js) and the inbox's contact panel (contact-tags.js): the API
 * calls (docs/contacts.md), the tag cache, and how a tag chip and a consent state
 * look. User data goes into text nodes only (h()).
 */
import { h, icon } from './dom.js';
import { contactName, formatFull, formatWhen, timeElement } from './format.js';

const enc = encodeURIComponent;

/** Consent states in words, with the badge tone and icon of each. */
export const CONSENT = {
  opted_in: { label: 'Opted in', tone: 'badge-success', icon: 'circle-check' },
  opted_out: { label: 'Opted out', tone: 'badge-danger', icon: 'bell-off' },
  unknown: { label: 'Not asked', tone: '', icon: 'info' },
};

/** Where a consent state came from, in words. */
export const CONSENT_SOURCE = {
  keyword: 'keyword (STOP/START)',
  agent: 'set by an agent',
  import: 'import',
};

/** Channels in words (the segment builder's choices and the list's column). */
export const CHANNELS = {
  widget: 'Web chat',
  whatsapp: 'WhatsApp',
  waha: 'WAHA',
  quick_chat: 'Quick chat',
};

/** Lead sources (docs/leads.md). */
export const LEAD_SOURCES = ['whatsapp', 'widget', 'quick_chat', 'campaign', 'api'];

/**
 * The contact and tag calls over api.js's wrapper `request`, and a cache of the
 * tag list (`tags()` loads it once; `refreshTags()` after a change).
 */
export function createContactsApi(request) {
  let tagList = null;
  let loading = null;
  const api = {
    request,
    list: (query) => request('GET', '/api/contacts', { query }),
    detail: (id) => request('GET', `/api/contacts/${enc(id)}`),
    setTags: (id, tagIds) => request('PUT', `/api/contacts/${enc(id)}/tags`, { body: { tag_ids: tagIds } }),
    setConsent: (id, state, note) => request('PUT', `/api/contacts/${enc(id)}/consent`, { body: { state, note: note || undefined } }),
    createTag: (name) => request('POST', '/api/tags', { body: { name } }),
    renameTag: (id, name) => request('PATCH', `/api/tags/${enc(id)}`, { body: { name } }),
    deleteTag: (id) => request('DELETE', `/api/tags/${enc(id)}`),
    bulk: (id, add, contactIds) =>
      request('POST', `/api/tags/${enc(id)}/${add ? 'add' : 'remove'}`, { body: { contact_ids: contactIds } }),
    segments: () => request('GET', '/api/segments'),
    preview: (filter) => request('POST', '/api/segments/preview', { body: { filter } }),
    saveSegment: (id, name, filter) =>
      id ? request('PUT', `/api/segments/${enc(id)}`, { body: { name, filter } }) : request('POST', '/api/segments', { body: { name, filter } }),
    deleteSegment: (id) => request('DELETE', `/api/segments/${enc(id)}`),
    /** Every tag `{id, name, contacts}`, by name (cached). */
    async tags() {
      if (tagList) return tagList;
      if (!loading) {
        loading = request('GET', '/api/tags')
          .then((body) => {
            tagList = body.tags || [];
            return tagList;
          })
          .finally(() => {
            loading = null;
          });
      }
      return loading;
    },
    /** Forgets the cached tags and loads them again. */
    refreshTags() {
      tagList = null;
      return api.tags();
    },
  };
  return api;
}

/** A tag as a chip; with `onRemove`, a button that takes it off. */
export function tagChip(tag, onRemove) {
  return h(
    'span',
    { className: 'chip ct-tag', dataset: { testid: 'tag-chip', tag: tag.name } },
    icon('tag'),
    h('span', {}, tag.name),
    onRemove
      ? h(
          'button',
          { type: 'button', className: 'ct-tag-remove', attrs: { 'aria-label': `Remove tag ${tag.name}` }, onclick: onRemove },
          icon('x'),
        )
      : null,
  );
}

/** The consent badge: "Opted out · keyword (STOP/START)" with the date as a tooltip. */
export function consentBadge(consent) {
  const c = consent || { state: 'unknown' };
  const info = CONSENT[c.state] || CONSENT.unknown;
  const source = c.source ? CONSENT_SOURCE[c.source] || c.source : '';
  return h(
    'span',
    { className: `badge ${info.tone} ct-consent`, title: c.changed_at ? formatFull(c.changed_at) : '', dataset: { testid: 'consent-state', state: c.state } },
    icon(info.icon),
    source ? `${info.label} · ${source}` : info.label,
  );
}

/** "Opted out by keyword (STOP/START), 5 min. ago (Ana)": a consent state in a sentence. */
export function consentSentence(consent, agentName = () => '') {
  const c = consent || { state: 'unknown' };
  if (c.state === 'unknown') return 'Never asked: no marketing consent recorded.';
  const info = CONSENT[c.state] || CONSENT.unknown;
  const parts = [info.label];
  if (c.source) parts.push(`(${CONSENT_SOURCE[c.source] || c.source}${c.changed_by ? `: ${agentName(c.changed_by)}` : ''})`);
  if (c.changed_at) parts.push(formatWhen(c.changed_at));
  return parts.join(' ');
}

/**
 * A contact summary's list row (the Contacts page; the segment builder's preview):
 * name (a link to the contact), phone/email, channel, tags, consent, last message;
 * with `selectable`, a checkbox that reports to `onSelect(checked)`.
 */
export function contactRow(s, { selectable = false, selected = false, onSelect = null } = {}) {
  const c = s.contact || {};
  const name = contactName(c);
  const box = selectable
    ? h('input', { type: 'checkbox', checked: selected, attrs: { 'aria-label': `Select ${name}` }, dataset: { testid: 'contact-select' }, onchange: (e) => onSelect(e.target.checked) })
    : null;
  return h(
    'li',
    { className: 'ct-row', dataset: { testid: 'contact-row', id: c.id } },
    selectable ? h('span', { className: 'ct-row-select' }, box) : null,
    h(
      'span',
      { className: 'ct-row-name' },
      h('a', { href: `#/contacts/c/${enc(c.id)}`, dataset: { testid: 'contact-link' } }, name),
      h('span', { className: 'ct-row-sub' }, [c.phone, c.email].filter(Boolean).join(' · ')),
    ),
    h('span', { className: 'ct-row-channel' }, s.channel ? h('span', { className: 'chip chip-channel', dataset: { channel: s.channel } }, CHANNELS[s.channel] || s.channel) : ''),
    h('ul', { className: 'ct-tags ct-row-tags', dataset: { testid: 'contact-row-tags' }, attrs: { 'aria-label': `Tags of ${name}` } }, (s.tags || []).map((t) => h('li', {}, tagChip(t)))),
    h('span', { className: 'ct-row-consent' }, consentBadge(s.consent)),
    h('span', { className: 'ct-row-when' }, s.last_message_at ? timeElement(s.last_message_at) : ''),
  );
}

