/*
 * "Message templates" (#/settings/templates, issue 17 §2, docs/campaigns.md): the
 * Meta templates synced from each WhatsApp Business Account — number/WABA, name,
 * language, category, status (approved ones are sendable), when each WABA was
 * last synced and whether that worked — and a "Sync now" button.
 * Needs campaigns.manage. API: GET /api/templates, POST /api/templates/sync.
 */
import { h, icon } from './dom.js';
import { toast, toastError } from './toast.js';
import { sectionHead } from './settings-ui.js';

/** The badge class of a template status. */
export function templateTone(t) {
  if (t.deleted) return 'badge-danger';
  if (t.status === 'APPROVED') return 'badge-success';
  if (t.status === 'REJECTED' || t.status === 'DISABLED' || t.status === 'PAUSED') return 'badge-danger';
  return 'badge-warning';
}

function when(ms) {
  return ms ? new Date(ms).toLocaleString() : 'never';
}

export function setupTemplatesSection(ctx) {
  const { accounts, signal } = ctx;
  const request = accounts.request;
  let data = { templates: [], syncs: [], wabas: [] };

  const head = sectionHead({ title: 'Message templates', backLabel: 'Back to settings', onBack: () => ctx.back('#/settings'), testid: 'templates-title' });
  head.heading.id = 'templates-heading';
  const syncBtn = h('button', { type: 'button', className: 'btn btn-primary', dataset: { testid: 'templates-sync' }, onclick: syncNow }, icon('rotate-ccw'), 'Sync now');
  const wabas = h('ul', { className: 'tp-wabas', dataset: { testid: 'templates-wabas' }, attrs: { 'aria-label': 'WhatsApp Business Accounts' } });
  const list = h('ul', { className: 'tp-list', dataset: { testid: 'templates-list' }, attrs: { 'aria-label': 'Templates' } });
  const element = h(
    'section',
    { className: 'settings-section', dataset: { testid: 'settings-templates' }, attrs: { 'aria-labelledby': 'templates-heading' } },
    head.root,
    h('p', { className: 'sf-note' }, icon('info'), h('span', {}, 'Templates are written and approved in Meta’s WhatsApp Manager; the hub syncs them at start, on Meta’s status webhook and when you press Sync now. Only approved templates can be sent, and only they can open a conversation after 24 hours of silence.')),
    h('div', { className: 'sf-actions tp-top' }, syncBtn),
    wabas,
    list,
  );

  function paint() {
    wabas.replaceChildren(
      ...(data.wabas.length
        ? data.wabas.map((w) => {
            const s = data.syncs.find((x) => x.waba_id === w.waba_id);
            const state = !s ? 'not synced yet' : s.ok ? `synced ${when(s.synced_at)} · ${s.count} templates` : `last sync failed ${when(s.synced_at)}: ${s.error}`;
            return h('li', { className: `tp-waba${s && !s.ok ? ' tp-failed' : ''}`, dataset: { testid: 'templates-waba' } },
              h('strong', {}, `WABA ${w.waba_id}`), h('span', {}, `numbers: ${w.numbers.join(', ')}`), h('span', { className: 'tp-sync' }, state));
          })
        : [h('li', { className: 'tp-empty' }, 'No Meta number has a WhatsApp Business Account id yet: add it to a number (or WHATSAPP_WABA_ID).')]),
    );
    list.replaceChildren(
      ...data.templates.map((t) =>
        h('li', { className: 'tp-item', dataset: { testid: 'template-row', name: t.name } },
          h('div', { className: 'tp-name' }, h('strong', {}, t.name), h('span', { className: 'tp-lang' }, t.language)),
          h('div', { className: 'tp-meta' },
            h('span', { className: 'badge' }, t.category),
            h('span', { className: `badge ${templateTone(t)}`, dataset: { testid: 'template-status' } }, t.deleted ? 'DELETED' : t.status),
            h('span', { className: 'tp-waba-id' }, `WABA ${t.waba_id}`)),
          h('p', { className: 'tp-body' }, t.shape.body),
        ),
      ),
    );
  }

  async function refresh() {
    try {
      const body = await request('GET', '/api/templates');
      if (signal.aborted) return;
      data = body;
      paint();
    } catch (err) {
      if (err.status !== 401) toastError(err);
    }
  }

  async function syncNow() {
    syncBtn.disabled = true;
    try {
      const answer = await request('POST', '/api/templates/sync', { body: {} });
      const failed = (answer.synced || []).filter((s) => s.error);
      toast(failed.length ? `Sync failed: ${failed[0].error}` : 'Templates synced.', failed.length ? 'error' : 'success');
      await refresh();
    } catch (err) {
      toastError(err);
    } finally {
      syncBtn.disabled = false;
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
