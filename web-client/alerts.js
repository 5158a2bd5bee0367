/*
 * The notification centre (issue 16, docs/alerts.md): handovers ("asked how to
 * pay", the bot handing a conversation over) and overdue tasks become alerts that
 * stay until the agent dismisses them. Owns the bell in the top bar (#alerts-toggle,
 * with the unread count in words for screen readers), its panel (newest first: who,
 * why, when, a link to the conversation), the banner shown when one arrives (in the
 * page flow under the top bar, so it never covers the composer), and their memory:
 * localStorage per agent, plus, on start, the leads the hub still lists as waiting
 * for a handover (GET /api/leads?handover=true) for supervisors. Desktop
 * notifications go through notify.js (`raise`), which respects the permission.
 */
import { h, icon } from './dom.js';
import { timeElement } from './format.js';
import { can } from './permissions.js';

const STORE_PREFIX = 'switchboard.alerts.v1.';
const MAX_ALERTS = 100; // the oldest fall off: a panel, not an archive
const MAX_DISMISSED = 300;

const conversationHash = (id) => `#/c/${encodeURIComponent(id)}`;
const alertIcon = (a) => ({ handover: 'hand', number_status: 'triangle-alert' })[a.kind] || 'list-todo';

/**
 * An alert from a `handover` frame (a lead's payment intent or the bot's
 * handover): `{key, kind, conversation_id, lead_id, title, detail, at, read}`.
 * `who(id)` names the conversation's contact ('' when unknown).
 */
export function alertFromHandover(f, who, now) {
  const name = who(f.conversation_id) || 'A customer';
  const byBot = f.by === 'bot';
  const why = f.reason || f.summary || (f.intent ? `${f.intent} intent` : '');
  const quote = f.last_message ? `“${f.last_message}”` : '';
  return {
    key: `handover:${f.conversation_id}`,
    kind: 'handover',
    conversation_id: f.conversation_id,
    lead_id: f.lead_id || null,
    title: byBot ? `The bot handed ${name} over to a person` : `${name} needs a person`,
    // The lead's reason already quotes the message ("payment intent: cara bayar?").
    detail: [why, f.last_message && why.includes(f.last_message) ? '' : quote].filter(Boolean).join(' — '),
    at: now,
    read: false,
  };
}

/** An alert from a `task_due` frame (a task row); the conversation is filled in later. */
export function alertFromTask(t, now) {
  return {
    key: `task:${t.id}`,
    kind: 'task_due',
    conversation_id: null,
    lead_id: t.lead_id,
    title: `Task overdue: ${t.title}`,
    detail: t.due_at ? `Was due ${new Date(t.due_at).toLocaleString()}` : '',
    at: now,
    read: false,
  };
}

/**
 * An alert from a `number_status` frame whose WAHA session needs an admin
 * (FAILED/STOPPED): it links to Settings → WhatsApp numbers.
 */
export function alertFromNumberStatus(f, now) {
  const word = f.status === 'STOPPED' ? 'stopped' : 'failed';
  return {
    key: `number:${f.number_id}`,
    kind: 'number_status',
    conversation_id: null,
    lead_id: null,
    href: '#/settings/numbers',
    title: `WhatsApp number “${f.label}” has ${word}`,
    detail: 'No WhatsApp messages flow through it until its WAHA session is restarted.',
    at: now,
    read: false,
  };
}

/** Alerts for the leads `GET /api/leads?handover=true` lists (their latest conversation). */
export function alertsFromLeads(leads) {
  return leads
    .filter((l) => l.handover_pending && (l.conversation_ids || []).length)
    .map((l) => {
      const conv = l.conversation_ids[l.conversation_ids.length - 1];
      const contact = (l.contacts || [])[0] || {};
      const name = contact.name || contact.phone || contact.email || 'A customer';
      return {
        key: `handover:${conv}`,
        kind: 'handover',
        conversation_id: conv,
        lead_id: l.id,
        title: `${name} needs a person`,
        detail: l.handover_reason || '',
        at: Date.parse(l.updated_at) || Date.now(),
        read: false,
      };
    });
}

function load(key) {
  try {
    const v = JSON.parse(localStorage.getItem(key) || 'null');
    if (v && Array.isArray(v.alerts) && Array.isArray(v.dismissed)) return v;
  } catch {
    /* unreadable or blocked: start empty */
  }
  return { alerts: [], dismissed: [] };
}

/**
 * Wires the notification centre for `me`. `request` is api.request, `who(id)` a
 * conversation's contact name, `raise(title, body, id)` a desktop notification,
 * `navigate(hash)` moves the inbox.
 */
export function setupAlerts({ me, request, signal, who, raise, navigate }) {
  const key = STORE_PREFIX + me.id;
  const state = load(key);
  const button = document.getElementById('alerts-toggle');
  const panel = document.getElementById('alerts-panel');
  const list = document.getElementById('alerts-list');
  const count = document.getElementById('alerts-count');
  const banner = document.getElementById('alerts-banner');
  const supervises = can(me, 'team.supervise');

  function save() {
    try {
      localStorage.setItem(key, JSON.stringify(state));
    } catch {
      /* storage full or blocked: the alerts last for this page */
    }
  }

  function open(alert) {
    alert.read = true;
    save();
    paint();
    closePanel();
    hideBanner();
    if (alert.conversation_id) navigate(conversationHash(alert.conversation_id));
    else if (alert.href) navigate(alert.href);
  }

  function dismiss(k) {
    state.alerts = state.alerts.filter((a) => a.key !== k);
    state.dismissed = [...state.dismissed.filter((d) => d !== k), k].slice(-MAX_DISMISSED);
    if (banner.dataset.key === k) hideBanner();
    save();
    paint();
  }

  function row(a) {
    const link = a.href
      ? h(
          'a',
          {
            href: a.href,
            className: 'alert-open',
            dataset: { testid: 'alert-open' },
            onclick: (e) => {
              e.preventDefault();
              open(a);
            },
          },
          'Open WhatsApp numbers',
        )
      : a.conversation_id
      ? h(
          'a',
          {
            href: conversationHash(a.conversation_id),
            className: 'alert-open',
            dataset: { testid: 'alert-open' },
            onclick: (e) => {
              e.preventDefault();
              open(a);
            },
          },
          'Open conversation',
        )
      : h('span', { className: 'alert-muted' }, 'Finding the conversation…');
    return h(
      'li',
      { className: `alert-item${a.read ? '' : ' is-unread'}`, dataset: { testid: 'alert-item', kind: a.kind, key: a.key } },
      icon(alertIcon(a)),
      h(
        'div',
        { className: 'alert-text' },
        h('p', { className: 'alert-title' }, a.read ? '' : h('span', { className: 'sr-only' }, 'New: '), a.title),
        a.detail ? h('p', { className: 'alert-detail' }, a.detail) : null,
        h('p', { className: 'alert-meta' }, timeElement(a.at), ' · ', link),
      ),
      h(
        'button',
        { type: 'button', className: 'btn btn-ghost btn-icon', dataset: { testid: 'alert-dismiss' }, onclick: () => dismiss(a.key) },
        icon('x'),
        h('span', { className: 'sr-only' }, `Dismiss: ${a.title}`),
      ),
    );
  }

  function paint() {
    const unread = state.alerts.filter((a) => !a.read).length;
    const words = unread ? `Alerts, ${unread} unread` : 'Alerts, none unread';
    button.querySelector('.sr-only').textContent = words;
    button.title = words;
    count.textContent = unread ? String(unread) : '';
    count.hidden = !unread;
    const sorted = [...state.alerts].sort((a, b) => b.at - a.at);
    list.replaceChildren(
      ...(sorted.length ? sorted.map(row) : [h('li', { className: 'alert-empty' }, 'Nothing needs you right now.')]),
    );
    document.getElementById('alerts-clear').hidden = !sorted.length;
  }

  function add(alert, announce) {
    state.dismissed = state.dismissed.filter((d) => d !== alert.key);
    const old = state.alerts.find((a) => a.key === alert.key);
    state.alerts = [alert, ...state.alerts.filter((a) => a.key !== alert.key)].slice(0, MAX_ALERTS);
    if (old && !alert.conversation_id) alert.conversation_id = old.conversation_id;
    save();
    paint();
    if (announce) {
      showBanner(alert);
      // A desktop notification needs somewhere to go: a task's waits for its lead.
      if (alert.conversation_id) raise(alert.title, alert.detail, alert.conversation_id);
    }
  }

  function showBanner(a) {
    banner.dataset.key = a.key;
    banner.replaceChildren(
      icon(alertIcon(a)),
      h('p', { className: 'alert-banner-text' }, h('strong', {}, a.title), a.detail ? ` — ${a.detail}` : ''),
      a.conversation_id || a.href
        ? h('button', { type: 'button', className: 'btn btn-primary', dataset: { testid: 'alert-banner-open' }, onclick: () => open(a) }, 'Open')
        : null,
      h(
        'button',
        { type: 'button', className: 'btn btn-ghost btn-icon', dataset: { testid: 'alert-banner-close' }, onclick: hideBanner },
        icon('x'),
        h('span', { className: 'sr-only' }, 'Hide this notice (it stays in Alerts)'),
      ),
    );
    banner.hidden = false;
  }

  function hideBanner() {
    banner.hidden = true;
    banner.replaceChildren();
    delete banner.dataset.key;
  }

  function openPanel() {
    panel.hidden = false;
    button.setAttribute('aria-expanded', 'true');
    // Opening the panel reads them: the count is "what I have not seen".
    // (The rows keep their "new" look until the panel is painted again.)
    if (state.alerts.some((a) => !a.read)) {
      for (const a of state.alerts) a.read = true;
      save();
      paintCountOnly();
    }
    panel.focus({ preventScroll: true });
  }

  function paintCountOnly() {
    count.hidden = true;
    count.textContent = '';
    button.querySelector('.sr-only').textContent = 'Alerts, none unread';
    button.title = 'Alerts, none unread';
  }

  function closePanel(focusButton) {
    if (panel.hidden) return;
    panel.hidden = true;
    button.setAttribute('aria-expanded', 'false');
    paint();
    if (focusButton) button.focus();
  }

  /** Finds the conversation of a task's lead so the alert can link to it. */
  async function resolveLead(alert) {
    try {
      const lead = await request('GET', `/api/leads/${encodeURIComponent(alert.lead_id)}`);
      const ids = lead.conversation_ids || (lead.lead && lead.lead.conversation_ids) || [];
      const a = state.alerts.find((x) => x.key === alert.key);
      if (!a || !ids.length || signal.aborted) return;
      a.conversation_id = ids[ids.length - 1];
      const c0 = (lead.contacts || [])[0];
      const name = who(a.conversation_id) || (c0 && (c0.name || c0.phone || c0.email)) || '';
      if (name) a.detail = [name, a.detail].filter(Boolean).join(' — ');
      save();
      paint();
      if (banner.dataset.key === a.key) showBanner(a);
      raise(a.title, a.detail, a.conversation_id);
    } catch {
      /* not visible to us: the alert stays without a link */
    }
  }

  async function fetchPending() {
    if (!supervises || !can(me, 'leads.read')) return;
    try {
      const { leads } = await request('GET', '/api/leads', { query: { handover: true, limit: 50 } });
      if (signal.aborted) return;
      let changed = false;
      for (const a of alertsFromLeads(leads || [])) {
        if (state.dismissed.includes(a.key) || state.alerts.some((x) => x.key === a.key)) continue;
        state.alerts.push(a);
        changed = true;
      }
      if (changed) {
        save();
        paint();
      }
    } catch {
      /* the stored alerts are still shown */
    }
  }

  button.hidden = false;
  button.addEventListener('click', () => (panel.hidden ? openPanel() : closePanel(true)), { signal });
  document.getElementById('alerts-close').addEventListener('click', () => closePanel(true), { signal });
  document.getElementById('alerts-clear').addEventListener(
    'click',
    () => {
      for (const a of [...state.alerts]) dismiss(a.key);
      closePanel(true);
    },
    { signal },
  );
  panel.addEventListener('keydown', (e) => e.key === 'Escape' && closePanel(true), { signal });
  document.addEventListener(
    'click',
    (e) => {
      // A click that re-painted the list (dismiss) has a detached target: inside.
      if (!e.target.isConnected) return;
      if (!panel.hidden && !panel.contains(e.target) && !button.contains(e.target)) closePanel(false);
    },
    { signal },
  );
  signal.addEventListener('abort', () => {
    panel.hidden = true;
    button.hidden = true;
    hideBanner();
  });
  paint();
  fetchPending();

  return {
    /** Call with every `handover`, `task_due` and `number_status` frame. */
    onFrame(f) {
      if (f.type === 'handover') {
        if (!supervises || !f.conversation_id) return;
        add(alertFromHandover(f, who, Date.now()), true);
      } else if (f.type === 'number_status') {
        if (f.attention && can(me, 'accounts.manage')) add(alertFromNumberStatus(f, Date.now()), true);
      } else if (f.type === 'task_due') {
        const a = alertFromTask(f, Date.now());
        add(a, true);
        if (a.lead_id && !a.conversation_id) resolveLead(a);
      }
    },
  };
}
