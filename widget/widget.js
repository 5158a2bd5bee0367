/*
 * Switchboard guest widget loader (served as /widget.js).
 *
 * Owns everything a visitor sees on a host site: the launcher bubble and chat
 * panel (rendered inside a shadow root so the host page's CSS cannot reach it),
 * the guest session (POST /api/widget/sessions), the /ws/guest connection with
 * resume, the persisted outbox of unacknowledged messages, read ticks, typing,
 * the team's settings (GET /api/widget/config: pre-chat form, greeting, away
 * message), the page mode of the hosted quick-chat page, and the small
 * window.SwitchboardWidget hook used by tests.
 * Contract: docs/protocol.md and docs/api.md; look and behaviour: docs/frontends.md.
 *
 * One classic script on purpose, however long: a customer's site includes a
 * single <script> tag, with no module loader and no second request to go wrong.
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
  // `data-mode="page"` (the quick-chat page): the chat is the page. The panel
  // fills the element named by `data-mount` and is always open: no launcher, no
  // close button.
  const PAGE_MODE = cfg.mode === 'page';
  const STORE_KEY = QUICK_LINK ? `switchboard:${HUB}:q:${QUICK_LINK}` : `switchboard:${HUB}:${TEAM}`;

  const PING_EVERY_MS = 20000;
  const MAX_MISSED_PONGS = 2;
  const TYPING_REPEAT_MS = 3000;
  const TYPING_IDLE_MS = 4000;
  const TYPING_SHOW_MS = 6000;
  const BODY_MAX = 4096;
  const TIMES_EVERY_MS = 30000; // "2 minutes ago" moves on while the panel is open

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
      answered: st.answered,
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
    answered: Boolean(saved.answered), // an agent or the bot has replied or taken the conversation
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
  let timesTimer = 0;

  // --------------------------------------------------------------------- UI

  // Colours, spacing and type come from the hub's design system (/app/design.css,
  // loaded into the shadow root below: tokens on `:host`). A host page's CSP may
  // block that sheet, so every token has a fallback here — the same values, for
  // light and dark — through private `--w-*` properties.
  const CSS = `
:host{all:initial!important;display:block!important;position:static!important;color-scheme:light dark;
  --w-font:var(--sb-font-sans,system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif);
  --w-bg:var(--sb-surface,#fff);--w-bg2:var(--sb-surface-2,#eef0f4);--w-border:var(--sb-border,#d3d8e0);
  --w-text:var(--sb-text,#1a1d27);--w-muted:var(--sb-text-muted,#525a6b);
  --w-accent:var(--sb-accent,#4338ca);--w-on-accent:var(--sb-accent-contrast,#fff);--w-accent-soft:var(--sb-accent-soft,#e8e9fc);
  --w-focus:var(--sb-focus,#4338ca);--w-danger:var(--sb-danger,#b42318);--w-danger-soft:var(--sb-danger-soft,#fde7e5);
  --w-warning:var(--sb-warning,#92400e);--w-warning-soft:var(--sb-warning-soft,#fdf0d5);
  --w-success:var(--sb-success,#166534);--w-success-soft:var(--sb-success-soft,#dcf5e4);
  --w-tick:var(--sb-tick-read,#0369a1);--w-ok:var(--sb-dot-success,#16a34a);--w-wait:var(--sb-dot-warning,#d97706);
  --w-bad:var(--sb-dot-danger,#dc2626);
  --w-shadow:var(--sb-shadow-2,0 4px 8px rgba(16,24,40,.08),0 12px 24px rgba(16,24,40,.12));
  --w-r-sm:var(--sb-radius-sm,6px);--w-r-md:var(--sb-radius-md,10px);--w-r-lg:var(--sb-radius-lg,14px);
  --w-s1:var(--sb-space-1,4px);--w-s2:var(--sb-space-2,8px);--w-s3:var(--sb-space-3,12px);--w-s4:var(--sb-space-4,16px);
  --w-xs:var(--sb-text-xs,12px);--w-sm:var(--sb-text-sm,13px);--w-md:var(--sb-text-md,14px);--w-lg:var(--sb-text-lg,16px)}
@media (prefers-color-scheme:dark){:host{
  --w-bg:var(--sb-surface,#171a23);--w-bg2:var(--sb-surface-2,#222633);--w-border:var(--sb-border,#3a4152);
  --w-text:var(--sb-text,#e8eaf0);--w-muted:var(--sb-text-muted,#a9b0be);
  --w-accent:var(--sb-accent,#9ea6ff);--w-on-accent:var(--sb-accent-contrast,#10122a);--w-accent-soft:var(--sb-accent-soft,#262a4d);
  --w-focus:var(--sb-focus,#aab2ff);--w-danger:var(--sb-danger,#ff8a80);--w-danger-soft:var(--sb-danger-soft,#3d1a1a);
  --w-warning:var(--sb-warning,#fbbf52);--w-warning-soft:var(--sb-warning-soft,#352712);
  --w-success:var(--sb-success,#6ee79a);--w-success-soft:var(--sb-success-soft,#15301f);
  --w-tick:var(--sb-tick-read,#7cc4f5);--w-ok:var(--sb-dot-success,#4ade80);--w-wait:var(--sb-dot-warning,#fbbf24);
  --w-bad:var(--sb-dot-danger,#f87171);
  --w-shadow:var(--sb-shadow-2,0 4px 8px rgba(0,0,0,.45),0 12px 24px rgba(0,0,0,.5))}}
:host([data-mode=page]){height:100%!important}
*,*::before,*::after{box-sizing:border-box}
[hidden]{display:none!important}
.root{font:var(--w-md)/1.5 var(--w-font);color:var(--w-text);text-align:left;letter-spacing:normal;-webkit-font-smoothing:antialiased}
:host([data-mode=page]) .root{height:100%}
button,textarea,input{font:inherit;color:inherit;margin:0}
button{cursor:pointer}
:focus-visible{outline:2px solid var(--w-focus);outline-offset:2px}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.ic{width:1.15em;height:1.15em;flex:none;fill:none;stroke:currentColor;stroke-width:2;stroke-linecap:round;stroke-linejoin:round}
.launcher{position:fixed;right:20px;bottom:20px;z-index:2147483000;width:56px;height:56px;border:0;
  border-radius:50%;background:var(--w-accent);color:var(--w-on-accent);display:grid;place-items:center;
  box-shadow:var(--w-shadow);transition:transform .15s}
.launcher:hover{transform:scale(1.06)}
.launcher .ic{width:26px;height:26px}
.unread{position:absolute;top:-4px;right:-4px;min-width:20px;height:20px;padding:0 5px;border-radius:10px;
  background:var(--w-danger);color:var(--w-bg);font-size:var(--w-xs);font-weight:700;line-height:20px;text-align:center}
.panel{position:fixed;right:20px;bottom:20px;z-index:2147483000;width:380px;height:min(620px,calc(100vh - 40px));
  display:flex;flex-direction:column;background:var(--w-bg);border:1px solid var(--w-border);border-radius:var(--w-r-lg);
  overflow:hidden;box-shadow:var(--w-shadow)}
:host([data-mode=page]) .panel{position:relative;right:auto;bottom:auto;z-index:auto;width:100%;height:100%}
.head{display:flex;align-items:center;gap:var(--w-s2);padding:var(--w-s3) var(--w-s3) var(--w-s3) var(--w-s4);
  background:var(--w-accent);color:var(--w-on-accent)}
.head-text{flex:1;min-width:0}
.title{margin:0;font-size:var(--w-lg);font-weight:600;line-height:1.25;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.conn{font-size:var(--w-xs);min-height:1.5em}
.conn::before{content:"";display:inline-block;width:8px;height:8px;border-radius:50%;margin-right:6px;background:var(--w-wait);
  box-shadow:0 0 0 1.5px var(--w-on-accent);vertical-align:0}
.conn[data-state=idle]::before{display:none}
.conn[data-state=connected]::before{background:var(--w-ok)}
.conn[data-state=offline]::before,.conn[data-state=unavailable]::before{background:var(--w-bad)}
.close{border:0;background:transparent;color:inherit;width:36px;height:36px;border-radius:var(--w-r-sm);display:grid;place-items:center}
.close:hover{background:color-mix(in srgb,var(--w-on-accent) 15%,transparent)}
.close .ic{width:20px;height:20px}
:host([data-mode=page]) .close{display:none}
.body{flex:1;overflow-y:auto;padding:var(--w-s4) var(--w-s3) var(--w-s2);overscroll-behavior:contain}
.intro{margin:0 0 var(--w-s3);padding:var(--w-s2) var(--w-s3);border-radius:var(--w-r-md);background:var(--w-bg2);color:var(--w-muted);font-size:var(--w-sm)}
.intro[data-mode=away]{background:var(--w-warning-soft);color:var(--w-warning)}
.msg{display:flex;gap:var(--w-s2);margin:0 0 var(--w-s3);align-items:flex-end}
.msg.own{justify-content:flex-end}
.msg.system{justify-content:center;color:var(--w-muted);font-size:var(--w-xs);text-align:center}
.avatar{flex:none;width:28px;height:28px;margin-bottom:20px;border-radius:50%;background:var(--w-accent-soft);color:var(--w-accent);
  font-size:11px;font-weight:700;display:grid;place-items:center}
.bot .avatar{background:var(--w-success-soft);color:var(--w-success)}
.tag{margin-left:var(--w-s1);padding:0 6px;border-radius:999px;background:var(--w-success-soft);color:var(--w-success);font-size:11px;font-weight:700}
.wrap{max-width:80%;min-width:0}
.meta{font-size:var(--w-xs);color:var(--w-muted);margin:0 var(--w-s1) 2px}
.own .state{justify-content:flex-end}
.bubble{padding:var(--w-s2) var(--w-s3);border-radius:var(--w-r-lg);background:var(--w-bg2);white-space:pre-wrap;overflow-wrap:anywhere}
.own .bubble{background:var(--w-accent);color:var(--w-on-accent);border-bottom-right-radius:var(--w-s1)}
.them .bubble{border-bottom-left-radius:var(--w-s1)}
.own[data-status=sending] .bubble{opacity:.75}
.own[data-status=failed] .bubble{background:var(--w-danger-soft);color:var(--w-danger)}
.bubble a{color:inherit;text-decoration:underline}
.state{display:flex;align-items:center;gap:var(--w-s1);font-size:var(--w-xs);color:var(--w-muted);margin:2px var(--w-s1) 0;min-height:18px}
.state .ic{width:16px;height:16px}
.own[data-status=read] .tick{color:var(--w-tick)}
.own[data-status=failed] .state{color:var(--w-danger)}
.typing{padding:0 var(--w-s4) var(--w-s2);font-size:var(--w-xs);color:var(--w-muted);font-style:italic}
.composer{display:flex;gap:var(--w-s2);align-items:flex-end;padding:var(--w-s3);border-top:1px solid var(--w-border)}
.composer textarea{flex:1;min-width:0;resize:none;min-height:42px;max-height:120px;padding:9px var(--w-s3);border:1px solid var(--w-border);
  border-radius:var(--w-r-md);background:var(--w-bg);color:var(--w-text);line-height:1.4;outline:none}
textarea::placeholder,input::placeholder{color:var(--w-muted);opacity:1}
.composer textarea:focus,.prechat input:focus{border-color:var(--w-focus);box-shadow:0 0 0 3px color-mix(in srgb,var(--w-focus) 30%,transparent)}
.send{flex:none;width:42px;height:42px;border:0;border-radius:var(--w-r-md);background:var(--w-accent);color:var(--w-on-accent);display:grid;place-items:center}
.send:disabled{opacity:.45;cursor:default}
.send .ic{width:20px;height:20px}
.prechat{margin:0 0 var(--w-s3);padding:var(--w-s3);border:1px solid var(--w-border);border-radius:var(--w-r-md);display:grid;gap:var(--w-s3)}
.prechat p{margin:0;font-size:var(--w-sm)}
.prechat label{display:grid;gap:var(--w-s1);font-size:var(--w-xs);font-weight:600;color:var(--w-muted)}
.prechat input{font-weight:400;color:var(--w-text);padding:var(--w-s2) var(--w-s3);border:1px solid var(--w-border);border-radius:var(--w-r-sm);
  background:var(--w-bg);outline:none;width:100%}
.prechat input[aria-invalid=true]{border-color:var(--w-danger)}
.prechat .err{color:var(--w-danger)}
.actions{display:flex;gap:var(--w-s2);align-items:center}
.primary{border:0;border-radius:var(--w-r-sm);padding:var(--w-s2) var(--w-s4);background:var(--w-accent);color:var(--w-on-accent);font-weight:600}
.skip{border:0;background:transparent;color:var(--w-muted);text-decoration:underline;padding:var(--w-s2)}
@media (max-width:480px){
  .panel{inset:0;width:auto;height:auto;border:0;border-radius:0}
  :host([data-mode=page]) .panel{border-radius:0;border-width:1px 0 0}
  .prechat input,.composer textarea{font-size:16px} /* below 16px iOS zooms the page on focus */
}
@media (prefers-reduced-motion:reduce){.launcher{transition:none}}
`;

  // Icons: Lucide (https://lucide.dev), ISC licence, Copyright (c) for portions of
  // Lucide are held by Cole Bemis 2013-2022 as part of Feather (MIT); all other
  // copyright by Lucide Contributors 2022. Only the few paths the widget draws are
  // inlined here (the inbox uses the hub's sprite, /app/icons.svg).
  const ICONS = {
    chat: '<path d="M7.9 20A9 9 0 1 0 4 16.1L2 22Z"/>',
    x: '<path d="M18 6 6 18"/><path d="m6 6 12 12"/>',
    send: '<path d="M14.536 21.686a.5.5 0 0 0 .937-.024l6.5-19a.496.496 0 0 0-.635-.635l-19 6.5a.5.5 0 0 0-.024.937l7.93 3.18a2 2 0 0 1 1.112 1.11z"/><path d="m21.854 2.147-10.94 10.939"/>',
    check: '<path d="M20 6 9 17l-5-5"/>',
    checkCheck: '<path d="M18 6 7 17l-5-5"/><path d="m22 10-7.5 7.5L13 16"/>',
    clock: '<circle cx="12" cy="12" r="10"/><path d="M12 6v6l4 2"/>',
    alert: '<circle cx="12" cy="12" r="10"/><path d="M12 8v4"/><path d="M12 16h.01"/>',
  };

  function icon(name) {
    return `<svg class="ic" viewBox="0 0 24 24" aria-hidden="true" focusable="false">${ICONS[name]}</svg>`;
  }

  // Static markup only: no user or host data is ever interpolated here; the
  // title and every message are inserted afterwards as text.
  const SKELETON = `
<div class="root">
  <button type="button" class="launcher" data-testid="launcher" aria-label="Open chat" aria-haspopup="dialog" aria-expanded="false" aria-describedby="sb-unread">
    ${icon('chat')}
    <span class="unread" data-testid="badge" aria-hidden="true" hidden>0</span>
  </button>
  <span class="sr" id="sb-unread"></span>
  <div class="panel" data-testid="panel" role="dialog" hidden>
    <div class="head">
      <div class="head-text">
        <h2 class="title" id="sb-title"></h2>
        <div class="conn" data-testid="connection-status" role="status"></div>
      </div>
      <button type="button" class="close" aria-label="Close chat">${icon('x')}</button>
    </div>
    <div class="body" tabindex="0" role="region" aria-label="Conversation">
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
      <button type="submit" class="send" data-testid="composer-send" aria-label="Send message" disabled>${icon('send')}</button>
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
    if (PAGE_MODE) host.dataset.mode = 'page';
    shadow = host.attachShadow({ mode: 'open' });
    // The hub's design tokens. Before the widget's own sheet in cascade order
    // (adopted sheets come last), which only reads them, with fallbacks.
    const tokens = document.createElement('link');
    tokens.rel = 'stylesheet';
    tokens.href = `${HUB}/app/design.css`;
    shadow.appendChild(tokens);
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
      badge: $('.unread'),
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
    if (PAGE_MODE) {
      // Part of the page, not a popup over it.
      ui.launcher.hidden = true;
      ui.panel.setAttribute('role', 'region');
    }

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

    const place = (PAGE_MODE && cfg.mount && document.querySelector(cfg.mount)) || document.body;
    place.appendChild(host);
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
    paintTimes();
    clearInterval(timesTimer);
    timesTimer = setInterval(paintTimes, TIMES_EVERY_MS);
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
    paintIntro();
  }

  // The greeting, or the away message while nobody answers. Once an agent (or
  // the bot) has answered or taken the conversation, "we are away" is no longer
  // true for this visitor: the away message goes.
  function paintIntro() {
    if (!ui || !st.config) return;
    const away = st.config.available === false;
    ui.intro.dataset.mode = away ? 'away' : 'greeting';
    ui.intro.textContent = (away ? st.config.away_message : st.config.greeting) || ui.intro.textContent;
    ui.intro.hidden = away && st.answered;
  }

  function markAnswered() {
    if (st.answered) return;
    st.answered = true;
    persist();
    paintIntro();
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
    if (!ui || !st.open || PAGE_MODE) return;
    st.open = false;
    stopTyping();
    clearInterval(timesTimer);
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

  // One time format, in the visitor's own locale (Intl): "now" and "5 min. ago"
  // within the hour, the time of day today ("3:05 PM" / "15:05"), then date and
  // time ("Nov 21, 3:05 PM"), with the year when it is not this one. The full
  // date and time is the element's tooltip.
  const fmt = (() => {
    const make = (Ctor, opts) => {
      try {
        return new Ctor(undefined, opts);
      } catch {
        return null; // an old engine: fall back to toLocale*String below
      }
    };
    const time = { hour: 'numeric', minute: '2-digit' };
    return {
      rel: Intl.RelativeTimeFormat ? make(Intl.RelativeTimeFormat, { numeric: 'auto', style: 'short' }) : null,
      time: make(Intl.DateTimeFormat, time),
      day: make(Intl.DateTimeFormat, { month: 'short', day: 'numeric', ...time }),
      year: make(Intl.DateTimeFormat, { year: 'numeric', month: 'short', day: 'numeric', ...time }),
      full: make(Intl.DateTimeFormat, { dateStyle: 'full', timeStyle: 'short' }),
    };
  })();

  function formatWhen(iso, now = Date.now()) {
    const d = iso ? new Date(iso) : new Date(now);
    if (isNaN(d)) return '';
    const ago = Math.round((now - d.getTime()) / 1000);
    const today = new Date(now);
    if (fmt.rel && ago < 60) return fmt.rel.format(0, 'second'); // "now" (clocks differ a little)
    if (fmt.rel && ago < 3600) return fmt.rel.format(-Math.floor(ago / 60), 'minute');
    const f = d.toDateString() === today.toDateString() ? fmt.time : d.getFullYear() === today.getFullYear() ? fmt.day : fmt.year;
    return f ? f.format(d) : d.toLocaleString();
  }

  function paintTime(rec) {
    if (!rec.timeEl) return;
    const d = new Date(rec.createdAt || Date.now());
    rec.timeEl.textContent = formatWhen(rec.createdAt);
    if (rec.createdAt) rec.timeEl.dateTime = rec.createdAt;
    if (!isNaN(d)) rec.timeEl.title = fmt.full ? fmt.full.format(d) : d.toLocaleString();
  }

  function paintTimes() {
    for (const rec of st.byClientId.values()) paintTime(rec);
    for (const rec of st.bySeq.values()) paintTime(rec);
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

  // Own messages' state as an icon (clock, one tick, two ticks) with its word
  // for screen readers; a failure says why in words.
  const STATUS = {
    sending: ['clock', 'Sending'],
    sent: ['check', 'Sent'],
    read: ['checkCheck', 'Read'],
    failed: ['alert', 'Not sent'],
  };

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
      // Own messages need no visible name; screen readers still hear who wrote.
      meta.className = own ? 'meta sr' : 'meta';
      const who = document.createElement('span');
      who.textContent = name;
      meta.append(who);
      if (kind === 'bot') {
        // Visitors should know when an automated assistant is answering.
        const tag = document.createElement('span');
        tag.className = 'tag';
        tag.dataset.testid = 'bot-label';
        tag.textContent = 'Bot';
        meta.append(tag);
      }
      const bubble = document.createElement('div');
      bubble.className = 'bubble';
      appendLinkified(bubble, String(body));
      // Under the bubble: the time, and for own messages the state tick.
      const foot = document.createElement('div');
      foot.className = 'state';
      rec.timeEl = document.createElement('time');
      foot.appendChild(rec.timeEl);
      if (own) {
        rec.stateEl = document.createElement('span');
        rec.stateEl.className = 'tick';
        rec.stateEl.dataset.testid = 'message-state';
        foot.appendChild(rec.stateEl);
      }
      wrap.append(meta, bubble, foot);
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
    paintTime(rec);
    if (rec.stateEl) {
      const [name, word] = STATUS[rec.status] || ['check', ''];
      const text = document.createElement('span');
      if (rec.status === 'failed') text.textContent = rec.error ? `${word}: ${rec.error}` : word;
      else {
        text.className = 'sr';
        text.textContent = word;
      }
      rec.stateEl.innerHTML = icon(name); // static markup from ICONS, no message data
      rec.stateEl.appendChild(text);
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
      if (sender.kind === 'agent' || sender.kind === 'bot') {
        hideTyping();
        markAnswered();
      }
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
    st.answered = false;
    updateBadge();
    paintIntro();
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
      if (res.status === 400) {
        // Perhaps a time zone or locale the hub does not know: they are nice to
        // have, never worth losing the chat over.
        res = await postSession(st.token, false);
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

  // Where the visitor is, as far as the browser says without asking: the agent
  // sees it (country, local time) beside the conversation.
  function visitorContext() {
    const ctx = {};
    try {
      const tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
      if (tz) ctx.time_zone = tz;
    } catch {
      /* no Intl: leave it out */
    }
    if (navigator.language) ctx.locale = navigator.language;
    return ctx;
  }

  function postSession(token, withContext = true) {
    const body = { team: TEAM, source: SOURCE, page_url: location.href, ...(withContext ? visitorContext() : {}), ...(st.profile || {}) };
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
      case 'queue':
        // position null: an agent has the conversation now.
        if (f.position === null) markAnswered();
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
    if (cfg.open === '1' || PAGE_MODE) open();

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
