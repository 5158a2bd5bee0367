/*
 * Tags on the Contacts page (#/contacts/tags, issue 17 §3, docs/contacts.md):
 * every tag with how many contacts carry it; with campaigns.manage, create one,
 * rename one (inline) and delete one (a second click confirms: deleting takes it
 * off every contact). POST /api/tags, PATCH/DELETE /api/tags/{id}.
 */
import { h, icon } from './dom.js';
import { toast, toastError } from './toast.js';
import { can } from './permissions.js';

/**
 * @param {{contacts: ReturnType<import('./contacts-data.js').createContactsApi>,
 *          me: object, signal: AbortSignal, onChange: () => void}} opts
 *   onChange: the tag list changed (the page refreshes its tag choices)
 */
export function setupTagManager({ contacts, me, signal, onChange }) {
  const manage = can(me, 'campaigns.manage');
  let tags = [];
  let editing = null; // tag id being renamed
  let confirming = null; // tag id whose delete awaits the second click

  const name = h('input', { type: 'text', maxLength: 40, required: true, dataset: { testid: 'tag-new-name' } });
  const createForm = h(
    'form',
    { className: 'ct-tag-create', hidden: !manage, onsubmit: create },
    h('label', { className: 'team-field' }, h('span', {}, 'New tag'), name),
    h('button', { type: 'submit', className: 'btn btn-primary', dataset: { testid: 'tag-create' } }, icon('plus'), 'Create tag'),
  );
  const list = h('ul', { className: 'ct-tag-list', dataset: { testid: 'tag-list' }, attrs: { 'aria-label': 'Tags' } });
  const status = h('p', { className: 'sr-only', attrs: { role: 'status' } });
  const element = h(
    'section',
    { className: 'ct-view', hidden: true, dataset: { testid: 'tag-manager' }, attrs: { 'aria-labelledby': 'ct-tags-title' } },
    h('h2', { id: 'ct-tags-title', className: 'ct-view-title' }, 'Tags'),
    manage ? null : h('p', { className: 'muted' }, 'Creating, renaming and deleting tags needs the campaigns permission.'),
    createForm,
    status,
    list,
  );

  async function load() {
    try {
      tags = await contacts.refreshTags();
      if (signal.aborted) return;
      paint();
    } catch (err) {
      if (err.status !== 401) toastError(err);
    }
  }

  function paint() {
    list.replaceChildren(
      ...(tags.length ? tags.map(item) : [h('li', { className: 'muted' }, 'No tags yet.')]),
    );
  }

  function item(t) {
    const count = h('span', { className: 'ct-tag-count' }, `${t.contacts} ${t.contacts === 1 ? 'contact' : 'contacts'}`);
    if (editing === t.id) {
      const input = h('input', { type: 'text', value: t.name, maxLength: 40, required: true, dataset: { testid: 'tag-rename-input' }, attrs: { 'aria-label': `New name for ${t.name}` } });
      const form = h(
        'form',
        { className: 'ct-tag-row', dataset: { testid: 'tag-row', tag: t.name }, onsubmit: (e) => rename(e, t, input.value) },
        input,
        h('button', { type: 'submit', className: 'btn btn-small btn-primary', dataset: { testid: 'tag-rename-save' } }, 'Save'),
        h('button', { type: 'button', className: 'btn btn-small btn-ghost', onclick: () => ((editing = null), paint()) }, 'Cancel'),
      );
      queueMicrotask(() => input.focus());
      return h('li', {}, form);
    }
    const confirm = confirming === t.id;
    return h(
      'li',
      {},
      h(
        'div',
        { className: 'ct-tag-row', dataset: { testid: 'tag-row', tag: t.name } },
        h('span', { className: 'chip ct-tag' }, icon('tag'), h('span', {}, t.name)),
        count,
        manage
          ? [
              h('button', { type: 'button', className: 'btn btn-small', dataset: { testid: 'tag-rename' }, attrs: { 'aria-label': `Rename ${t.name}` }, onclick: () => ((editing = t.id), (confirming = null), paint()) }, 'Rename'),
              h(
                'button',
                { type: 'button', className: `btn btn-small ${confirm ? 'btn-danger' : ''}`, dataset: { testid: 'tag-delete' }, attrs: { 'aria-label': confirm ? `Really delete ${t.name}?` : `Delete ${t.name}` }, onclick: () => remove(t) },
                confirm ? 'Really delete?' : 'Delete',
              ),
            ]
          : null,
      ),
    );
  }

  async function create(e) {
    e.preventDefault();
    const value = name.value.trim();
    if (!value) return;
    try {
      await contacts.createTag(value);
      name.value = '';
      status.textContent = `Tag ${value} created.`;
      await load();
      onChange();
    } catch (err) {
      if (err.status !== 401) toastError(err);
    }
  }

  async function rename(e, t, value) {
    e.preventDefault();
    try {
      await contacts.renameTag(t.id, value.trim());
      editing = null;
      status.textContent = `Tag renamed to ${value.trim()}.`;
      await load();
      onChange();
    } catch (err) {
      if (err.status !== 401) toastError(err);
    }
  }

  async function remove(t) {
    if (confirming !== t.id) {
      confirming = t.id;
      paint();
      return;
    }
    confirming = null;
    try {
      await contacts.deleteTag(t.id);
      toast(`Tag ${t.name} deleted.`, 'success');
      await load();
      onChange();
    } catch (err) {
      if (err.status !== 401) toastError(err);
    }
  }

  return {
    element,
    show() {
      editing = null;
      confirming = null;
      load();
    },
  };
}
