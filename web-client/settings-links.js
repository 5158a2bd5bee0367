/*
 * "Quick-chat links" (#/settings/links, issue 16, docs/admin.md): the agent's own
 * links to a chat page (/q/{handle}/{source}, docs/quick-chat.md), one per source
 * (linkedin, instagram, a card…), each with its address, a copy button, a QR code
 * to print, and how many people opened it and started a conversation. Managers
 * also see their teams' links (the hub lists them). Needs quick_links.manage.
 * API: GET/POST /api/quick-links, DELETE /api/quick-links/{id}. The QR code comes
 * from the vendored qrcode-generator (vendor/qrcode-generator.js, MIT), drawn as
 * an <img> from a data: address (the inbox's CSP allows data: images).
 */
import { h, icon } from './dom.js';
import { toast, toastError } from './toast.js';
import { sectionHead, field, formError, savedNote, confirmDialog } from './settings-ui.js';
import qrcode from './vendor/qrcode-generator.js';

const SLUG_RE = /^[a-z0-9_-]{1,32}$/;

/** The full address of a link: `{origin}/q/{handle}/{source}`. */
export function linkUrl(link, origin = location.origin) {
  return `${origin}/q/${encodeURIComponent(link.handle)}/${encodeURIComponent(link.source)}`;
}

/** A QR code of `text` as a GIF data: address (error correction M, auto size). */
export function qrDataUrl(text) {
  const qr = qrcode(0, 'M');
  qr.addData(text);
  qr.make();
  return qr.createDataURL(4, 2);
}

async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    toast('Link copied.', 'success');
  } catch {
    // No clipboard (an insecure origin, or permission refused): the address is on
    // screen to select by hand.
    toast('Copying is not allowed here: select the address and copy it.', 'error');
  }
}

export function setupLinksSection(ctx) {
  const { accounts, me, signal } = ctx;
  const request = accounts.request;
  let links = [];

  const head = sectionHead({ title: 'Quick-chat links', backLabel: 'Back to settings', onBack: () => ctx.back('#/settings'), testid: 'links-title' });
  head.heading.id = 'links-heading';
  const list = h('ul', { className: 'link-list', dataset: { testid: 'link-list' }, attrs: { 'aria-label': 'Quick-chat links' } });
  const element = h(
    'section',
    { className: 'settings-section', dataset: { testid: 'settings-links' }, attrs: { 'aria-labelledby': 'links-heading' } },
    head.root,
    h(
      'p',
      { className: 'sf-note' },
      icon('info'),
      h('span', {}, 'Share a link (or print its QR code) where people find you: whoever opens it chats with you, and their lead remembers where they came from.'),
    ),
    newLinkForm(),
    list,
  );

  function newLinkForm() {
    const source = field({ label: 'Where you will share it', testid: 'link-source', hint: 'A short word: linkedin, instagram, card… (a-z, 0-9, - and _).', attrs: { spellcheck: 'false' }, required: true });
    const handle = field({
      label: 'Your handle (optional)',
      testid: 'link-handle',
      hint: 'Chosen once, with your first link; by default your name.',
      attrs: { spellcheck: 'false' },
    });
    const error = formError('link-error');
    const saved = savedNote('link-saved');
    const submit = h('button', { type: 'submit', className: 'btn btn-primary', dataset: { testid: 'link-submit' } }, icon('plus'), 'Create link');
    const form = h(
      'form',
      { className: 'settings-card', noValidate: true, dataset: { testid: 'link-form' }, attrs: { 'aria-label': 'New quick-chat link' } },
      h('h3', { className: 'sf-card-title' }, 'New link'),
      h('div', { className: 'sf-grid' }, source.root, handle.root),
      error.el,
      h('div', { className: 'sf-actions' }, submit, saved.el),
    );
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      error.show('');
      saved.show('');
      const s = source.input.value.trim().toLowerCase();
      const hd = handle.input.value.trim().toLowerCase();
      source.setError(SLUG_RE.test(s) ? '' : 'Use 1-32 of a-z, 0-9, - and _ (for example “linkedin”).');
      handle.setError(!hd || SLUG_RE.test(hd) ? '' : 'Use 1-32 of a-z, 0-9, - and _.');
      const bad = form.querySelector('[aria-invalid=true]');
      if (bad) {
        bad.focus();
        return;
      }
      submit.disabled = true;
      try {
        const body = hd ? { source: s, handle: hd } : { source: s };
        const made = await request('POST', '/api/quick-links', { body });
        source.input.value = '';
        handle.input.value = '';
        saved.show(`Created ${location.origin}${made.url}.`);
        await refresh();
      } catch (err) {
        error.show(err.message || 'The link could not be created.');
      } finally {
        submit.disabled = false;
      }
    });
    return form;
  }

  function row(l) {
    const url = linkUrl(l);
    let qr = null;
    try {
      qr = h('img', { className: 'link-qr', src: qrDataUrl(url), alt: `QR code for ${url}`, width: 132, height: 132, dataset: { testid: 'link-qr' } });
    } catch {
      /* a text too long for a QR code: the address alone */
    }
    const owner = l.agent_id === me.id ? '' : 'A colleague’s link · ';
    return h(
      'li',
      { className: `settings-card link-row${l.active ? '' : ' is-inactive'}`, dataset: { testid: 'link-row', source: l.source } },
      qr,
      h(
        'div',
        { className: 'link-main' },
        h('p', { className: 'link-source' }, icon('link'), h('strong', {}, l.source), ' ', l.active ? h('span', { className: 'badge badge-success' }, 'Active') : h('span', { className: 'badge' }, 'Off')),
        h('p', { className: 'link-url' }, h('a', { href: url, target: '_blank', rel: 'noopener', dataset: { testid: 'link-url' } }, url)),
        h(
          'p',
          { className: 'agent-row-meta', dataset: { testid: 'link-counts' } },
          `${owner}${l.clicks} ${l.clicks === 1 ? 'visit' : 'visits'} · ${l.conversations} ${l.conversations === 1 ? 'conversation' : 'conversations'}`,
        ),
        h(
          'div',
          { className: 'sf-actions' },
          h('button', { type: 'button', className: 'btn', dataset: { testid: 'link-copy' }, onclick: () => copy(url) }, icon('copy'), 'Copy link', h('span', { className: 'sr-only' }, ` for ${l.source}`)),
          l.active
            ? h('button', { type: 'button', className: 'btn btn-danger', dataset: { testid: 'link-deactivate' }, onclick: () => deactivate(l) }, 'Turn off', h('span', { className: 'sr-only' }, ` ${l.source}`))
            : null,
        ),
      ),
    );
  }

  async function deactivate(l) {
    const ok = await confirmDialog({
      title: `Turn off the ${l.source} link?`,
      text: 'People who open it will see that the link no longer works. Conversations it started stay as they are.',
      confirmLabel: 'Turn off',
      danger: true,
    });
    if (!ok) return;
    try {
      await request('DELETE', `/api/quick-links/${encodeURIComponent(l.id)}`);
      await refresh();
    } catch (err) {
      toastError(err);
    }
  }

  async function refresh() {
    try {
      const body = await request('GET', '/api/quick-links');
      if (signal.aborted) return;
      links = body.quick_links || [];
      list.replaceChildren(...(links.length ? links.map(row) : [h('li', { className: 'empty' }, 'No links yet: create your first one above.')]));
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
