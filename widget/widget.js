/*
 * Switchboard guest widget loader (served as /widget.js).
 *
 * Owns everything a visitor sees on a host site: the launcher bubble and chat
 * panel (rendered inside a shadow root so the host page's CSS cannot reach it),
 * the guest session (POST /api/widget/sessions), the /ws/guest connection with
 * resume, the persisted outbox of unacknowledged messages, read ticks, typing,
 * the team's settings (GET /api/widget/config: pre-chat form, greeting, away
 * message) and the small window.SwitchboardWidget hook used by tests.
 * Contract: docs/protocol.md and docs/api.md.
 */
(() => {
  'use strict';

  // The tag may be included twice (CMS snippets love that); the first copy wins.
  if (window.SwitchboardWidget) return;

  // document.currentScript only exists while this file's top level runs, so it
  // has to be captured now, before any callback.
  const script = document.currentScript || findOwnScript();
  const cfg = (script && script.dataset) || {};
  const HUB = new URL((script && script.src) || '/', location.href).origin;
  const TEAM = cfg.team || 'default';
  const SOURCE = cfg.source || 'widget';
  const TITLE = cfg.title || 'Chat with us';
  const WS_URL = HUB.replace(/^http/, 'ws') + '/ws/guest';
  // Set by the hosted quick-chat page (/q/{handle}/{source}): the session is
  // opened through that link, and kept apart from any widget session of the site.
  const QUICK_LINK = cfg.quickLink || '';
  const STORE_KEY = QUICK_LINK ? `switchboard:${HUB}:q:${QUICK_LINK}` : `switchboard:${HUB}:${TEAM}`;

  const PING_EVERY_MS = 20000;
  const MAX_MISSED_PONGS = 2;
  const TYPING_REPEAT_MS = 3000;
  const TYPING_IDLE_MS = 4000;
  const TYPING_SHOW_MS = 6000;
  const BODY_MAX = 4096;

  function findOwnScript() {
    const scripts = document.getElementsByTagName('script');
    for (let i = scripts.length - 1; i >= 0; i--) {
      if (/\/widget\.js(?:[?#]|$)/.test(scripts[i].src)) return scripts[i];
    }
    return null;
  }

  // ---------------------------------------------------------------- storage

  // localStorage can throw (Safari private mode, sandboxed iframes, quota);
  // the widget then simply works without persistence.
  function loadSaved() {
    try {
      const data = JSON.parse(localStorage.getItem(STORE_KEY));
      return data && typeof data === 'object' ? data : {};
    } catch {
      return {};
    }
  }

  function persist() {
    const data = {
      guest_token: st.token,
      conversation_id: st.conversationId,
      read_seq: st.readSeq,
      profile: st.profile,
      outbox: st.outbox.map((r) => ({ client_msg_id: r.clientMsgId, body: r.body, created_at: r.createdAt })),
    };
    try {
      localStorage.setItem(STORE_KEY, JSON.stringify(data));
    } catch {
      /* see loadSaved */
    }
  }

  const saved = loadSaved();

  // ------------------------------------------------------------------ state

  const st = {
    token: saved.guest_token || null,
    conversationId: saved.conversation_id || null,
    lastSeq: 0, // highest seq received in a `message` frame (the resume cursor)
    readSeq: Number(saved.read_seq) || 0, // highest seq the visitor has seen with the panel open
    agentReadSeq: 0, // own messages up to here get the "read" tick
    lastReadSent: 0,
    bySeq: new Map(), // seq -> record
    byClientId: new Map(), // client_msg_id -> record (own messages)
    outbox: [], // own records not yet acknowledged, in send order
    open: false,
    wanted: false, // a session is needed (panel opened once, or a token is stored)
    confirmed: false, // the hub accepted the session during this page view
    fatal: false, // the hub refused the configuration (e.g. unknown team): stop retrying
    profile: saved.profile && typeof saved.profile === 'object' ? saved.profile : null, // pre-chat answers
    config: null, // GET /api/widget/config
  };

  let ws = null;
  let live = false; // hello received on the current socket
  let ready = false; // resumed received: safe to (re)send the outbox
  let attempts = 0;
  let retryTimer = 0;
  let pingTimer = 0;
  let missedPongs = 0;
  let sessionPending = false;
  let typingOn = false;
  let typingSentAt = 0;
  let typingIdleTimer = 0;
  let typingShowTimer = 0;

  // --------------------------------------------------------------------- UI

  const CSS = `
:host{all:initial!important;display:block!important;position:static!important;
  --sb-accent:#4f46e5;--sb-accent-fg:#fff;--sb-bg:#fff;--sb-fg:#1f2330;--sb-muted:#6b7080;
  --sb-them:#f1f2f6;--sb-border:#e3e5ec;--sb-danger:#c62828}
*,*::before,*::after{box-sizing:border-box}
[hidden]{display:none!important}
.root{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
  color:var(--sb-fg);text-align:left;letter-spacing:normal;-webkit-font-smoothing:antialiased}
button,textarea{font:inherit;color:inherit;margin:0}
button{cursor:pointer}
:focus-visible{outline:2px solid var(--sb-accent);outline-offset:2px}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.launcher{position:fixed;right:20px;bottom:20px;z-index:2147483000;width:56px;height:56px;border:0;
  border-radius:50%;background:var(--sb-accent);color:var(--sb-accent-fg);display:grid;place-items:center;
  box-shadow:0 6px 20px rgba(0,0,0,.25);transition:transform .15s}
.launcher:hover{transform:scale(1.06)}
.launcher svg{width:26px;height:26px}
.badge{position:absolute;top:-4px;right:-4px;min-width:20px;height:20px;padding:0 5px;border-radius:10px;
  background:var(--sb-danger);color:#fff;font-size:12px;font-weight:700;line-height:20px;text-align:center}
.panel{position:fixed;right:20px;bottom:20px;z-index:2147483000;width:370px;height:min(600px,calc(100vh - 40px));
  display:flex;flex-direction:column;background:var(--sb-bg);border-radius:14px;overflow:hidden;
  box-shadow:0 12px 40px rgba(0,0,0,.28)}
.head{display:flex;align-items:center;gap:8px;padding:14px 14px 12px 18px;background:var(--sb-accent);color:var(--sb-accent-fg)}
.head-text{flex:1;min-width:0}
.title{margin:0;font-size:16px;font-weight:600;line-height:1.25;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.conn{font-size:12px;opacity:.85}
.conn::before{content:"";display:inline-block;width:7px;height:7px;border-radius:50%;margin-right:6px;background:#fbbf24;vertical-align:1px}
.conn[data-state=connected]::before{background:#34d399}
.conn[data-state=offline]::before,.conn[data-state=unavailable]::before{background:#f87171}
.close{border:0;background:transparent;color:inherit;width:36px;height:36px;border-radius:8px;display:grid;place-items:center}
.close:hover{background:rgba(255,255,255,.15)}
.close svg{width:18px;height:18px}
.body{flex:1;overflow-y:auto;padding:14px 14px 6px;overscroll-behavior:contain}
.intro{margin:0 0 12px;padding:10px 12px;border-radius:10px;background:var(--sb-them);color:var(--sb-muted);font-size:13px}
.msg{display:flex;gap:8px;margin:0 0 10px;align-items:flex-end}
.msg.own{justify-content:flex-end}
.msg.system{justify-content:center;color:var(--sb-muted);font-size:12px;text-align:center}
.avatar{flex:none;width:28px;height:28px;border-radius:50%;background:#c7d2fe;color:#312e81;font-size:11px;font-weight:700;display:grid;place-items:center}
.bot .avatar{background:#d1fae5;color:#065f46}
.tag{margin-left:4px;padding:0 5px;border-radius:8px;background:#d1fae5;color:#065f46;font-size:10px;font-weight:700}
.wrap{max-width:78%;min-width:0}
.meta{font-size:11px;color:var(--sb-muted);margin:0 4px 2px}
.own .meta,.own .state{text-align:right}
.bubble{padding:8px 12px;border-radius:14px;background:var(--sb-them);white-space:pre-wrap;overflow-wrap:anywhere}
.own .bubble{background:var(--sb-accent);color:var(--sb-accent-fg);border-bottom-right-radius:4px}
.them .bubble{border-bottom-left-radius:4px}
.own[data-status=sending] .bubble{opacity:.7}
.own[data-status=failed] .bubble{background:#fdecea;color:var(--sb-danger)}
.bubble a{color:inherit;text-decoration:underline}
.state{font-size:11px;color:var(--sb-muted);margin:2px 4px 0}
.own[data-status=failed] .state{color:var(--sb-danger)}
.typing{padding:0 18px 6px;font-size:12px;color:var(--sb-muted);font-style:italic}
.composer{display:flex;gap:8px;align-items:flex-end;padding:10px 12px;border-top:1px solid var(--sb-border)}
.composer textarea{flex:1;resize:none;min-height:40px;max-height:120px;padding:9px 12px;border:1px solid var(--sb-border);
  border-radius:10px;background:#fff;line-height:1.4;outline:none}
.composer textarea:focus{border-color:var(--sb-accent);box-shadow:0 0 0 3px rgba(79,70,229,.15)}
.send{flex:none;width:40px;height:40px;border:0;border-radius:10px;background:var(--sb-accent);color:var(--sb-accent-fg);display:grid;place-items:center}
.send:disabled{opacity:.45;cursor:default}
.send svg{width:18px;height:18px}
.intro[data-mode=away]{background:#fff7e6;color:#7a4b00}
.prechat{margin:0 0 12px;padding:12px;border:1px solid var(--sb-border);border-radius:10px;display:grid;gap:10px}
.prechat p{margin:0;font-size:13px}
.prechat label{display:grid;gap:4px;font-size:12px;font-weight:600;color:var(--sb-muted)}
.prechat input{font:inherit;font-weight:400;color:var(--sb-fg);padding:8px 10px;border:1px solid var(--sb-border);border-radius:8px;background:#fff;outline:none;width:100%}
.prechat input:focus{border-color:var(--sb-accent);box-shadow:0 0 0 3px rgba(79,70,229,.15)}
.prechat .err{color:var(--sb-danger)}
.actions{display:flex;gap:8px}
.primary{border:0;border-radius:8px;padding:8px 14px;background:var(--sb-accent);color:var(--sb-accent-fg);font-weight:600}
.skip{border:0;background:transparent;color:var(--sb-muted);text-decoration:underline}
@media (max-width:480px){
  .prechat input{font-size:16px}
  .panel{inset:0;width:auto;height:auto;border-radius:0}
  .composer textarea{font-size:16px} /* below 16px iOS zooms the page on focus */
}
@media (prefers-reduced-motion:reduce){.launcher{transition:none}}
`;

  // Static markup only: no user or host data is ever interpolated here; the
  // title and every message are inserted afterwards as text.
  const SKELETON = `
<div class="root">
  <button type="button" class="launcher" data-testid="launcher" aria-label="Open chat" aria-haspopup="dialog" aria-expanded="false" aria-describedby="sb-unread">
    <svg viewBox="0 0 24 24" fill="currentColor" aria-hidden="true"><path d="M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z"/></svg>
    <span class="badge" data-testid="badge" aria-hidden="true" hidden>0</span>
  </button>
  <span class="sr" id="sb-unread"></span>
  <div class="panel" data-testid="panel" role="dialog" hidden>
    <div class="head">
      <div class="head-text">
        <h2 class="title" id="sb-title"></h2>
        <div class="conn" data-testid="connection-status" role="status"></div>
      </div>
      <button type="button" class="close" aria-label="Close chat">
        <svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2.5" stroke-linecap="round" aria-hidden="true"><path d="M6 6l12 12M18 6L6 18"/></svg>
      </button>
    </div>
    <div class="body">
      <p class="intro" data-testid="intro" data-mode="greeting">Hi! Send us a message and we will reply here.</p>
      <form class="prechat" data-testid="prechat-form" novalidate hidden>
        <p>Before we start: how can we reach you?</p>
        <label data-field="name">Name<input name="name" autocomplete="name" maxlength="100" data-testid="prechat-name"></label>
        <label data-field="email">Email<input name="email" type="email" autocomplete="email" maxlength="254" data-testid="prechat-email"></label>
        <label data-field="phone">Phone<input name="phone" type="tel" autocomplete="tel" maxlength="32" data-testid="prechat-phone"></label>
        <p class="err" role="alert" hidden></p>
        <div class="actions">
          <button type="submit" class="primary" data-testid="prechat-submit">Start chat</button>
          <button type="button" class="skip" data-testid="prechat-skip">Skip</button>
        </div>
      </form>
      <div class="messages" data-testid="messages" role="log" aria-live="polite" aria-label="Messages"></div>
    </div>
    <div class="typing" data-testid="typing" hidden>Agent is typing…</div>
    <form class="composer" novalidate>
      <label class="sr" for="sb-input">Your message</label>
      <textarea id="sb-input" data-testid="composer-input" rows="1" maxlength="${BODY_MAX}" placeholder="Type a message…" enterkeyhint="send"></textarea>
      <button type="submit" class="send" data-testid="composer-send" aria-label="Send message" disabled>
        <svg viewBox="0 0 24 24" fill="currentColor" aria-hidden="true"><path d="M3.4 20.4 21 12 3.4 3.6 3.4 10l12.6 2-12.6 2z"/></svg>
      </button>
    </form>
  </div>
</div>`;

  let ui = null;
  let shadow = null;

  function mount() {
    // An unregistered custom element: host selectors such as `div {…}` never
    // match it, and it is a valid shadow host.
    const host = document.createElement('switchboard-widget');
    host.id = 'switchboard-widget-host-7d1c';
    shadow = host.attachShadow({ mode: 'open' });
    if ('adoptedStyleSheets' in shadow && typeof CSSStyleSheet === 'function' && 'replaceSync' in CSSStyleSheet.prototype) {
      // Constructed sheets are not blocked by a host page's style-src CSP.
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      shadow.adoptedStyleSheets = [sheet];
    } else {
      const style = document.createElement('style');
      style.textContent = CSS;
      shadow.appendChild(style);
    }
    const tpl = document.createElement('template');
    tpl.innerHTML = SKELETON;
    shadow.appendChild(tpl.content);

    const $ = (sel) => shadow.querySelector(sel);
    ui = {
      launcher: $('.launcher'),
      badge: $('.badge'),
      unreadText: $('#sb-unread'),
      panel: $('.panel'),
      title: $('.title'),
      conn: $('.conn'),
      close: $('.close'),
      body: $('.body'),
      list: $('.messages'),
      intro: $('.intro'),
      prechat: $('.prechat'),
      prechatError: $('.prechat .err'),
      skip: $('.skip'),
      typing: $('.typing'),
      form: $('.composer'),
      input: $('textarea'),
      send: $('.send'),
    };
    ui.title.textContent = TITLE;
    ui.panel.setAttribute('aria-label', TITLE);

    ui.launcher.addEventListener('click', open);
    ui.close.addEventListener('click', close);
    ui.panel.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        e.stopPropagation();
        close();
      }
    });
    ui.form.addEventListener('submit', (e) => {
      e.preventDefault();
      submit();
    });
    ui.input.addEventListener('keydown', (e) => {
      // isComposing: Enter also confirms an IME composition (CJK input).
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        submit();
      }
    });
    ui.input.addEventListener('input', onComposerInput);
    ui.prechat.addEventListener('submit', (e) => {
      e.preventDefault();
      submitPrechat(false);
    });
    ui.skip.addEventListener('click', () => submitPrechat(true));

    document.body.appendChild(host);
  }

  function setConn(state) {
    const text = {
      idle: '',
      connecting: 'Connecting…',
      connected: 'Connected',
      reconnecting: 'Reconnecting…',
      offline: 'You are offline',
      unavailable: 'Chat is unavailable right now',
    }[state];
    ui.conn.dataset.state = state;
    ui.conn.textContent = text;
  }

  function refreshConn() {
    if (st.fatal) setConn('unavailable');
    else if (live) setConn('connected');
    else if (navigator.onLine === false) setConn('offline');
    else if (!st.wanted) setConn('idle');
    else setConn(attempts > 0 ? 'reconnecting' : 'connecting');
  }

  function open() {
    if (!ui) return;
    st.open = true;
    ui.panel.hidden = false;
    ui.launcher.hidden = true;
    ui.launcher.setAttribute('aria-expanded', 'true');
    markSeen();
    scrollToEnd();
    ui.input.focus();
    loadConfig().then(() => {
      if (!st.open) return;
      if (needsPrechat()) showPrechat();
      else want();
    });
  }

  // ---------------------------------------------------- settings, pre-chat

  // Fetched on every open: whether anyone is online changes all the time.
  async function loadConfig() {
    try {
      const res = await fetch(`${HUB}/api/widget/config?team=${encodeURIComponent(TEAM)}`, { credentials: 'omit' });
      if (res.ok) st.config = await res.json();
    } catch {
      /* offline: keep the last answer, or the built-in greeting */
    }
    if (ui && st.config) {
      const away = st.config.available === false;
      ui.intro.dataset.mode = away ? 'away' : 'greeting';
      ui.intro.textContent = (away ? st.config.away_message : st.config.greeting) || ui.intro.textContent;
    }
  }

  // The form is asked once, before the visitor's first conversation.
  function needsPrechat() {
    const fields = (st.config && st.config.prechat_fields) || [];
    return fields.length > 0 && !st.token && !st.profile && !st.outbox.length;
  }

  function showPrechat() {
    const fields = st.config.prechat_fields;
    for (const label of ui.prechat.querySelectorAll('label')) {
      const on = fields.includes(label.dataset.field);
      label.hidden = !on;
      label.querySelector('input').required = on && Boolean(st.config.prechat_required);
    }
    ui.skip.hidden = Boolean(st.config.prechat_required);
    ui.prechat.hidden = false;
    ui.form.hidden = true;
    const first = ui.prechat.querySelector('label:not([hidden]) input');
    if (first) first.focus();
  }

  function submitPrechat(skipped) {
    const profile = {};
    if (!skipped) {
      for (const input of ui.prechat.querySelectorAll('label:not([hidden]) input')) {
        const v = input.value.trim();
        if (input.required && !v) return prechatError(`Please fill in your ${input.name}.`, input);
        if (v && input.type === 'email' && !/^[^\s@]+@[^\s@]+$/.test(v)) return prechatError('Please check the email address.', input);
        if (v) profile[input.name] = v;
      }
    }
    st.profile = profile;
    persist();
    ui.prechatError.hidden = true;
    ui.prechat.hidden = true;
    ui.form.hidden = false;
    ui.input.focus();
    want();
  }

  function prechatError(text, input) {
    ui.prechatError.textContent = text;
    ui.prechatError.hidden = false;
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  }

  function close() {
    if (!ui || !st.open) return;
    st.open = false;
    stopTyping();
    ui.panel.hidden = true;
    ui.launcher.hidden = false;
    ui.launcher.setAttribute('aria-expanded', 'false');
    // Return focus only if it was ours; a programmatic close must not steal it.
    if (shadow.activeElement) ui.launcher.focus();
  }

  function visible() {
    return st.open && document.visibilityState === 'visible';
  }

  function scrollToEnd() {
    ui.body.scrollTop = ui.body.scrollHeight;
  }

  function nearEnd() {
    return ui.body.scrollHeight - ui.body.scrollTop - ui.body.clientHeight < 80;
  }

  // --------------------------------------------------------------- messages

  function pad2(n) {
    return String(n).padStart(2, '0');
  }

  function hhmm(iso) {
    const d = iso ? new Date(iso) : new Date();
    return isNaN(d) ? '' : `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  }

  function initials(name) {
    const parts = String(name || '?').trim().split(/\s+/).filter(Boolean);
    const letters = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] || '?').slice(0, 2);
    return letters.toUpperCase();
  }

  const URL_RE = /\bhttps?:\/\/[^\s<>"']+/gi;

  // Builds text nodes and <a> elements; never parses the body as HTML.
  function appendLinkified(parent, text) {
    let last = 0;
    for (const m of text.matchAll(URL_RE)) {
      let raw = m[0];
      // Sentence punctuation after a link belongs to the sentence, as does a
      // closing parenthesis without an opening one inside the URL.
      raw = raw.replace(/[.,;:!?'"]+$/, '');
      if (raw.endsWith(')') && !raw.includes('(')) raw = raw.slice(0, -1);
      let url = null;
      try {
        url = new URL(raw);
      } catch {
        /* not a URL after all: stays text */
      }
      if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) continue;
      if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
      const a = document.createElement('a');
      a.href = url.href;
      a.target = '_blank';
      a.rel = 'noopener noreferrer nofollow';
      a.textContent = raw;
      parent.appendChild(a);
      last = m.index + raw.length;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  }

  const STATUS_TEXT = { sending: 'Sending…', sent: 'Sent', read: 'Read' };

  function makeRecord({ seq = null, clientMsgId = null, own, sender, body, createdAt, status }) {
    const rec = { seq, clientMsgId, own, sender, body, createdAt, status, error: '', el: null, stateEl: null, timeEl: null };
    const kind = own ? 'guest' : (sender && sender.kind) || 'agent';
    const el = document.createElement('div');
    el.className = `msg ${own ? 'own' : kind === 'system' ? 'system' : 'them'} ${kind}`;
    el.dataset.testid = 'message';
    rec.el = el;

    if (kind === 'system') {
      const text = document.createElement('div');
      appendLinkified(text, String(body));
      el.appendChild(text);
    } else {
      const name = own ? 'You' : (sender && sender.name) || (kind === 'bot' ? 'Assistant' : 'Agent');
      if (!own) {
        const av = document.createElement('div');
        av.className = 'avatar';
        av.setAttribute('aria-hidden', 'true');
        av.textContent = initials(name);
        el.appendChild(av);
      }
      const wrap = document.createElement('div');
      wrap.className = 'wrap';
      const meta = document.createElement('div');
      meta.className = 'meta';
      const who = document.createElement('span');
      who.textContent = name;
      rec.timeEl = document.createElement('time');
      meta.append(who);
      if (kind === 'bot') {
        // Visitors should know when an automated assistant is answering.
        const tag = document.createElement('span');
        tag.className = 'tag';
        tag.dataset.testid = 'bot-label';
        tag.textContent = 'Bot';
        meta.append(tag);
      }
      meta.append(' · ', rec.timeEl);
      const bubble = document.createElement('div');
      bubble.className = 'bubble';
      appendLinkified(bubble, String(body));
      wrap.append(meta, bubble);
      if (own) {
        rec.stateEl = document.createElement('div');
        rec.stateEl.className = 'state';
        wrap.appendChild(rec.stateEl);
      }
      el.appendChild(wrap);
    }
    paint(rec);
    return rec;
  }

  function paint(rec) {
    const el = rec.el;
    if (rec.seq != null) el.dataset.seq = String(rec.seq);
    else delete el.dataset.seq;
    el.dataset.status = rec.status;
    if (rec.timeEl) {
      rec.timeEl.textContent = hhmm(rec.createdAt);
      if (rec.createdAt) rec.timeEl.dateTime = rec.createdAt;
    }
    if (rec.stateEl) {
      rec.stateEl.textContent = rec.status === 'failed' ? `Failed${rec.error ? ': ' + rec.error : ''}` : STATUS_TEXT[rec.status] || '';
    }
  }

  // Keeps the list ordered by seq with messages still sending last (a failed
  // one keeps its place). Walks from the end because new messages almost
  // always belong there.
  function place(rec) {
    // A freshly sent message always scrolls into view; acks and replays only
    // follow along when the reader is already at the bottom.
    const stick = nearEnd() || (rec.own && rec.seq == null);
    if (rec.seq == null) {
      ui.list.appendChild(rec.el);
    } else {
      let ref = ui.list.lastElementChild;
      while (ref && (ref === rec.el || (ref.dataset.seq === undefined ? ref.dataset.status === 'sending' : Number(ref.dataset.seq) > rec.seq))) {
        ref = ref.previousElementSibling;
      }
      ui.list.insertBefore(rec.el, ref ? ref.nextSibling : ui.list.firstChild);
    }
    if (stick) scrollToEnd();
  }

  function ownStatusFor(seq) {
    return seq <= st.agentReadSeq ? 'read' : 'sent';
  }

  function onMessage(f) {
    const seq = Number(f.seq);
    if (!Number.isFinite(seq)) return;
    if (seq > st.lastSeq) st.lastSeq = seq;
    if (st.bySeq.has(seq)) return; // replayed or already acknowledged

    const sender = f.sender || {};
    const own = sender.kind === 'guest';
    const pending = own && f.client_msg_id ? st.byClientId.get(f.client_msg_id) : null;
    if (pending && pending.seq == null) {
      // Our own message came back before (or instead of) its ack.
      pending.createdAt = f.created_at || pending.createdAt;
      settle(pending, seq);
      return;
    }

    const rec = makeRecord({
      seq,
      own,
      sender,
      body: f.body,
      createdAt: f.created_at,
      status: own ? ownStatusFor(seq) : 'received',
    });
    if (own && f.client_msg_id) st.byClientId.set(f.client_msg_id, rec);
    st.bySeq.set(seq, rec);
    place(rec);

    if (!own) {
      if (sender.kind === 'agent' || sender.kind === 'bot') hideTyping();
      if (visible()) markSeen();
      else updateBadge();
    }
  }

  function settle(rec, seq) {
    const other = st.bySeq.get(seq);
    dropFromOutbox(rec);
    if (other && other !== rec) {
      // Already rendered from a frame that carried no client_msg_id.
      rec.el.remove();
      st.byClientId.delete(rec.clientMsgId);
      return;
    }
    rec.seq = seq;
    rec.status = ownStatusFor(seq);
    rec.error = '';
    st.bySeq.set(seq, rec);
    paint(rec);
    place(rec);
  }

  function dropFromOutbox(rec) {
    const i = st.outbox.indexOf(rec);
    if (i >= 0) {
      st.outbox.splice(i, 1);
      persist();
    }
  }

  function fail(rec, reason) {
    dropFromOutbox(rec);
    rec.status = 'failed';
    rec.error = reason || '';
    paint(rec);
  }

  function applyAgentRead(seq) {
    if (!(seq > st.agentReadSeq)) return;
    st.agentReadSeq = seq;
    for (const rec of st.bySeq.values()) {
      if (rec.own && rec.seq <= seq && rec.status === 'sent') {
        rec.status = 'read';
        paint(rec);
      }
    }
  }

  // Everything up to lastSeq counts as seen while the panel is open and the
  // tab visible; the agent is told so when new replies arrived.
  function markSeen() {
    if (!visible()) return;
    if (st.lastSeq > st.readSeq) {
      st.readSeq = st.lastSeq;
      persist();
    }
    updateBadge();
    let newest = 0;
    for (const rec of st.bySeq.values()) if (!rec.own && rec.seq > newest) newest = rec.seq;
    if (newest > st.lastReadSent && live && st.conversationId) {
      if (sendFrame({ type: 'read', conversation_id: st.conversationId, seq: st.lastSeq })) st.lastReadSent = st.lastSeq;
    }
  }

  function updateBadge() {
    let n = 0;
    if (!st.open) {
      for (const rec of st.bySeq.values()) {
        const kind = rec.sender && rec.sender.kind;
        if (!rec.own && (kind === 'agent' || kind === 'bot') && rec.seq > st.readSeq) n++;
      }
    }
    ui.badge.hidden = n === 0;
    ui.badge.textContent = n > 9 ? '9+' : String(n);
    ui.unreadText.textContent = n ? `${n} unread message${n === 1 ? '' : 's'}` : '';
  }

  function resetConversation() {
    // A different conversation (new session): its seqs start again at 1.
    for (const rec of st.bySeq.values()) rec.el.remove();
    st.bySeq.clear();
    for (const [id, rec] of st.byClientId) if (rec.seq != null) st.byClientId.delete(id);
    st.lastSeq = 0;
    st.readSeq = 0;
    st.agentReadSeq = 0;
    st.lastReadSent = 0;
    updateBadge();
  }

  // ---------------------------------------------------------------- sending

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID(); // secure contexts only
    const b = new Uint8Array(16);
    if (window.crypto && crypto.getRandomValues) crypto.getRandomValues(b);
    else for (let i = 0; i < 16; i++) b[i] = (Math.random() * 256) | 0;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function submit() {
    const body = ui.input.value.trim();
    if (!body) return;
    ui.input.value = '';
    autoGrow();
    stopTyping();
    const rec = makeRecord({
      clientMsgId: uuid(),
      own: true,
      body,
      createdAt: new Date().toISOString(),
      status: 'sending',
    });
    st.byClientId.set(rec.clientMsgId, rec);
    st.outbox.push(rec);
    persist();
    place(rec);
    scrollToEnd();
    transmit(rec);
    want();
  }

  function transmit(rec) {
    if (!ready || rec.status !== 'sending') return;
    sendFrame({ type: 'send', conversation_id: st.conversationId, client_msg_id: rec.clientMsgId, body: rec.body });
  }

  // Re-sending with the same client_msg_id is safe: the server answers a
  // duplicate with the original id/seq instead of storing it twice.
  function flushOutbox() {
    for (const rec of st.outbox.slice()) transmit(rec);
  }

  function onAck(f) {
    const rec = st.byClientId.get(f.client_msg_id);
    if (rec && rec.seq == null) settle(rec, Number(f.seq));
  }

  function onErrorFrame(f) {
    const rec = f.ref ? st.byClientId.get(f.ref) : null;
    if (f.code === 'unavailable') {
      // Nothing was stored; try the same frame again a little later.
      const targets = rec ? [rec] : f.ref === 'send' ? st.outbox.slice() : [];
      setTimeout(() => targets.forEach(transmit), 1500 + Math.random() * 1500);
    } else if (rec && rec.seq == null && ['validation', 'forbidden', 'not_found', 'frame_too_large'].includes(f.code)) {
      fail(rec, f.message);
    }
  }

  // ----------------------------------------------------------------- typing

  function autoGrow() {
    ui.input.style.height = 'auto';
    ui.input.style.height = Math.min(ui.input.scrollHeight + 2, 120) + 'px';
    ui.send.disabled = !ui.input.value.trim();
  }

  function onComposerInput() {
    autoGrow();
    if (!ui.input.value.trim()) {
      stopTyping();
      return;
    }
    const now = Date.now();
    if ((!typingOn || now - typingSentAt > TYPING_REPEAT_MS) && live && st.conversationId) {
      if (sendFrame({ type: 'typing', conversation_id: st.conversationId, on: true })) {
        typingOn = true;
        typingSentAt = now;
      }
    }
    clearTimeout(typingIdleTimer);
    typingIdleTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
  }

  function stopTyping() {
    clearTimeout(typingIdleTimer);
    if (!typingOn) return;
    typingOn = false;
    sendFrame({ type: 'typing', conversation_id: st.conversationId, on: false });
  }

  function onTyping(f) {
    const kind = f.sender && f.sender.kind;
    if (kind !== 'agent' && kind !== 'bot') return;
    if (!f.on) return hideTyping();
    ui.typing.hidden = false;
    clearTimeout(typingShowTimer);
    // An "off" frame can be lost with a dropped connection.
    typingShowTimer = setTimeout(hideTyping, TYPING_SHOW_MS);
  }

  function hideTyping() {
    clearTimeout(typingShowTimer);
    ui.typing.hidden = true;
  }

  // --------------------------------------------------------------- session

  function want() {
    st.wanted = true;
    reconnect();
  }

  function dropToken() {
    st.token = null;
    st.confirmed = false;
    persist();
  }

  async function startSession() {
    if (sessionPending || st.fatal) return;
    sessionPending = true;
    clearTimeout(retryTimer);
    refreshConn();
    try {
      let res = await postSession(st.token);
      if (res.status === 401 && st.token) {
        // A token the hub no longer accepts: start over as a new visitor.
        dropToken();
        res = await postSession(null);
      }
      if (res.status === 400 || res.status === 403 || res.status === 404) {
        st.fatal = true; // misconfigured embed (e.g. unknown team): retrying cannot help
        refreshConn();
        return;
      }
      if (!res.ok) throw new Error(String(res.status));
      const data = await res.json();
      if (data.conversation_id !== st.conversationId) {
        resetConversation();
        st.conversationId = data.conversation_id;
      }
      st.token = data.guest_token;
      st.confirmed = true;
      // Read ticks for history survive a reload: the hub tells us how far the agent read.
      if (Number(data.agent_read_seq) > 0) applyAgentRead(Number(data.agent_read_seq));
      persist();
      openSocket();
    } catch {
      scheduleReconnect(); // network down, 429 or 503
    } finally {
      sessionPending = false;
    }
  }

  function postSession(token) {
    const body = { team: TEAM, source: SOURCE, page_url: location.href, ...(st.profile || {}) };
    if (QUICK_LINK) body.quick_link = QUICK_LINK;
    if (token) body.guest_token = token;
    return fetch(`${HUB}/api/widget/sessions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      credentials: 'omit',
    });
  }

  // ------------------------------------------------------------- websocket

  function sendFrame(frame) {
    if (!ws || !live || ws.readyState !== 1) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  function openSocket() {
    clearTimeout(retryTimer);
    if (ws || !st.token || st.fatal) return;
    refreshConn();
    let sock;
    try {
      sock = new WebSocket(WS_URL);
    } catch {
      scheduleReconnect();
      return;
    }
    ws = sock;
    sock.onopen = () => sock.send(JSON.stringify({ type: 'auth', token: st.token }));
    sock.onmessage = (ev) => {
      if (ws === sock) onFrame(ev.data);
    };
    // `error` is always followed by `close`, which does the recovery.
    sock.onclose = (ev) => {
      if (ws === sock) socketGone(ev.code);
    };
  }

  function socketGone(code) {
    ws = null;
    live = false;
    ready = false;
    clearInterval(pingTimer);
    stopTypingLocal();
    hideTyping();
    if (code === 1008) dropToken(); // the hub rejected the token: new session
    scheduleReconnect();
  }

  function stopTypingLocal() {
    clearTimeout(typingIdleTimer);
    typingOn = false;
  }

  // A socket can sit half-open for minutes on a flaky mobile network; close()
  // may not fire `close` promptly, so detach it and recover right away.
  function killSocket() {
    const sock = ws;
    if (!sock) return;
    sock.onopen = sock.onmessage = sock.onclose = null;
    try {
      sock.close();
    } catch {
      /* already closing */
    }
    socketGone(0);
  }

  function scheduleReconnect() {
    clearTimeout(retryTimer);
    if (st.fatal || !st.wanted) return refreshConn();
    const cap = Math.min(15000, 500 * 2 ** Math.min(attempts, 10));
    attempts++;
    refreshConn();
    retryTimer = setTimeout(reconnect, cap / 2 + Math.random() * (cap / 2));
  }

  // A stored token is confirmed once per page view (that also moves the
  // visitor to a fresh conversation if theirs is gone); later reconnects go
  // straight to the socket.
  function reconnect() {
    if (ws || st.fatal) return;
    if (st.token && st.confirmed) openSocket();
    else startSession();
  }

  function onFrame(data) {
    let f;
    try {
      f = JSON.parse(data);
    } catch {
      return;
    }
    if (!f || typeof f !== 'object') return;
    missedPongs = 0; // any frame proves the connection is alive
    if (f.conversation_id && st.conversationId && f.conversation_id !== st.conversationId) return;

    switch (f.type) {
      case 'hello': {
        live = true;
        const cid = f.you && f.you.conversation_id;
        if (cid && cid !== st.conversationId) {
          resetConversation();
          st.conversationId = cid;
          persist();
        }
        sendFrame({ type: 'resume', cursors: { [st.conversationId]: st.lastSeq } });
        clearInterval(pingTimer);
        missedPongs = 0;
        pingTimer = setInterval(ping, PING_EVERY_MS);
        refreshConn();
        break;
      }
      case 'resumed':
        ready = true;
        attempts = 0;
        flushOutbox();
        markSeen();
        break;
      case 'message':
        onMessage(f);
        break;
      case 'ack':
        onAck(f);
        break;
      case 'read':
        if (f.reader && f.reader.kind === 'agent') applyAgentRead(Number(f.seq));
        else if (f.reader && f.reader.kind === 'guest' && f.seq > st.readSeq) {
          // Seen in another tab of the same visitor.
          st.readSeq = Number(f.seq);
          updateBadge();
        }
        break;
      case 'typing':
        onTyping(f);
        break;
      case 'error':
        onErrorFrame(f);
        break;
      default:
        break; // pong and frames this widget has no use for
    }
  }

  function ping() {
    if (missedPongs >= MAX_MISSED_PONGS) {
      killSocket();
      return;
    }
    missedPongs++;
    sendFrame({ type: 'ping' });
  }

  // ------------------------------------------------------------------ boot

  function restoreOutbox() {
    const items = Array.isArray(saved.outbox) ? saved.outbox : [];
    for (const item of items) {
      if (!item || typeof item.client_msg_id !== 'string' || typeof item.body !== 'string') continue;
      const rec = makeRecord({
        clientMsgId: item.client_msg_id,
        own: true,
        body: item.body,
        createdAt: item.created_at,
        status: 'sending',
      });
      st.byClientId.set(rec.clientMsgId, rec);
      st.outbox.push(rec);
      place(rec);
    }
  }

  function boot() {
    mount();
    restoreOutbox();
    refreshConn();
    if (st.token || st.outbox.length) want();
    // The hosted quick-chat page is the chat: open it at once.
    if (cfg.open === '1') open();

    window.addEventListener('online', () => {
      attempts = 0;
      if (!ws && st.wanted) reconnect();
      else refreshConn();
    });
    // The socket cannot survive losing the network; dropping it now shows the
    // true state and lets `online` reconnect at once.
    window.addEventListener('offline', () => {
      killSocket();
      refreshConn();
    });
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') {
        markSeen();
        // Timers are throttled in background tabs; check the link on return.
        if (!ws && st.wanted && !sessionPending) reconnect();
      }
    });
  }

  window.SwitchboardWidget = Object.freeze({
    open,
    close,
    get shadowRoot() {
      return shadow;
    },
    state() {
      return { connected: live, conversationId: st.conversationId, lastSeq: st.lastSeq, pending: st.outbox.length };
    },
  });

  if (document.body) boot();
  else document.addEventListener('DOMContentLoaded', boot, { once: true });
})();
