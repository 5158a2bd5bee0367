/*
 * Conversation view (right column): header with contact, status and the
 * assign/resolve actions; the message history (latest page, "Load earlier",
 * live messages exactly once by seq); the composer with its outbox; typing
 * and read state for the open conversation.
 */
import { h, icon, linkify } from './dom.js';
import { timeElement, initials, uuid, isWhatsApp, deliveryTick, formatBytesLabel, toneClass } from './format.js';
import { contactName, contactBadges, originText } from './contact.js';
import { auth } from './login.js';
import { toast, toastError } from './toast.js';
import { openTemplatePicker } from './template-picker.js';

const PAGE_SIZE = 50;
const GAP_PAGE_SIZE = 200;
const TYPING_REPEAT_MS = 3000;
const TYPING_IDLE_MS = 4000;
const TYPING_SHOW_MS = 6000;
const RETRY_UNAVAILABLE_MS = 2000;

/**
 * @param {{store: import('./store.js').Store, api: object,
 *          socket: import('./socket.js').HubSocket, signal: AbortSignal}} opts
 */
export function setupConversationView({ store, api, socket, signal }) {
  const app = document.getElementById('app');
  const view = document.getElementById('conversation-view');
  const placeholder = document.getElementById('view-placeholder');
  const body = document.getElementById('view-body');
  const title = document.getElementById('view-title');
  const meta = document.getElementById('view-meta');
  const assignBtn = document.getElementById('assign-me');
  const statusBtn = document.getElementById('toggle-status');
  const scroller = document.getElementById('message-scroll');
  const earlierBtn = document.getElementById('load-earlier');
  const list = document.getElementById('message-list');
  const typingEl = document.getElementById('typing');
  const form = document.getElementById('composer');
  const input = document.getElementById('composer-input');
  const sendBtn = document.getElementById('composer-send');
  // Meta WhatsApp conversations: the template picker opens above the composer.
  const pickerHost = h('div', { className: 'tpk-host', dataset: { testid: 'template-picker-host' } });
  form.before(pickerHost);
  const pickTemplate = () => {
    if (!cur) return;
    openTemplatePicker({ api, conversationId: cur.id, host: pickerHost });
  };
  const templateBtn = h('button', { type: 'button', className: 'btn btn-ghost', hidden: true, dataset: { testid: 'composer-template' }, onclick: pickTemplate }, icon('message-circle'), h('span', { className: 'btn-label' }, 'Template'));
  sendBtn.before(templateBtn);

  /**
   * The open conversation. `highest` is the resume cursor: the highest seq
   * received from the page load or a `message` frame (an ack alone does not
   * move it, because earlier messages may still be on their way).
   */
  let cur = null;
  let openToken = 0;
  let typingOn = false;
  let typingSentAt = 0;
  let typingIdleTimer = 0;
  let typingShowTimer = 0;

  // ------------------------------------------------------------- open/close

  async function open(id) {
    if (cur && cur.id === id) {
      // Chosen again (Enter on its row): the agent wants to write.
      if (!cur.loading && !app.classList.contains('show-details')) input.focus({ preventScroll: true });
      return;
    }
    pickerHost.replaceChildren();
    stopTyping();
    hideTyping();
    const token = ++openToken;
    cur = { id, bySeq: new Map(), pending: new Map(), waStatus: new Map(), lowest: 0, highest: 0, hasMore: false, loading: true, buffer: [] };
    store.activeId = id;
    store.watch(id);
    store.emit('list');
    app.classList.add('has-active');
    placeholder.hidden = true;
    body.hidden = false;
    view.dataset.id = id;
    list.replaceChildren();
    list.setAttribute('aria-busy', 'true');
    earlierBtn.hidden = true;
    input.value = '';
    autoGrow();
    renderHeader();

    const summary = store.conversations.has(id)
      ? null
      : api.conversation(id).then((conv) => store.upsert(conv)).catch(() => null);
    try {
      const page = await api.messages(id, { limit: PAGE_SIZE });
      if (token !== openToken) return; // another conversation was opened meanwhile
      page.messages.forEach(addMessage);
      cur.hasMore = Boolean(page.has_more);
    } catch (err) {
      if (token !== openToken) return;
      if (err.status === 404 || err.status === 403) {
        toastError(err);
        close();
        return;
      }
      if (err.status !== 401) toastError(err);
      // Without the page, resume from 0 replays the whole history instead.
    }
    await summary;
    if (token !== openToken) return;
    cur.loading = false;
    list.removeAttribute('aria-busy');
    drainBuffer();
    for (const entry of store.pendingFor(id)) showPending(entry);
    earlierBtn.hidden = !cur.hasMore;
    renderHeader();
    // Subscribes this session and delivers anything newer than the page,
    // exactly once; if the socket is down, the next hello resumes it.
    socket.resume({ [id]: cur.highest });
    scrollToEnd();
    markRead();
    input.focus({ preventScroll: true });
  }

  function close() {
    stopTyping();
    hideTyping();
    openToken++;
    cur = null;
    store.activeId = null;
    store.emit('list');
    app.classList.remove('has-active');
    placeholder.hidden = false;
    body.hidden = true;
    delete view.dataset.id;
    list.replaceChildren();
  }

  function renderHeader() {
    if (!cur) return;
    const conv = store.conversations.get(cur.id);
    if (!conv) {
      title.textContent = 'Conversation';
      meta.replaceChildren();
      assignBtn.hidden = true;
      statusBtn.hidden = true;
      return;
    }
    const contact = conv.contact || {};
    title.textContent = contactName(contact);
    const bits = [
      h('span', { className: `chip chip-${conv.status} ${toneClass(conv.status)}` }, conv.status),
      h('span', {}, store.agentName(conv.assignee_id)),
      ...contactBadges(conv),
    ];
    if (contact.email) bits.push(h('span', { className: 'view-meta-extra' }, contact.email));
    if (contact.phone) bits.push(h('span', { className: 'view-meta-extra' }, contact.phone));
    const origin = originText(conv);
    if (origin) bits.push(h('span', { className: 'page-url view-meta-extra', title: conv.page_url || '' }, origin));
    templateBtn.hidden = conv.channel !== 'whatsapp';
    if (isWhatsApp(conv) && conv.template_required === true) {
      // Meta refuses free text 24 h after the customer's last message: offer the picker.
      bits.push(
        h(
          'span',
          { className: 'wa-window-notice', dataset: { testid: 'wa-window-notice' }, attrs: { role: 'status' } },
          'Outside the 24-hour WhatsApp window: a template is needed',
          conv.channel === 'whatsapp'
            ? h('button', { type: 'button', className: 'btn btn-ghost btn-sm', dataset: { testid: 'wa-window-pick' }, onclick: pickTemplate }, 'Choose a template')
            : null,
        ),
      );
    }
    meta.replaceChildren(...bits);

    const mine = store.me && conv.assignee_id === store.me.id;
    assignBtn.hidden = Boolean(mine);
    statusBtn.hidden = false;
    statusBtn.textContent = conv.status === 'resolved' ? 'Reopen' : 'Resolve';
    refreshTicks(conv);
  }

  // --------------------------------------------------------------- messages

  function nearEnd() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  }

  function scrollToEnd() {
    scroller.scrollTop = scroller.scrollHeight;
  }

  function senderLabel(sender) {
    if (!sender) return 'Unknown';
    if (sender.kind !== 'guest' && store.me && sender.id === store.me.id) return 'You';
    if (sender.name) return sender.name;
    return { guest: 'Visitor', bot: 'Bot', system: 'System' }[sender.kind] || 'Agent';
  }

  function buildMessage({ id, sender, body: text, createdAt, seq, clientMsgId, status, attachment, wa, error }) {
    const kind = (sender && sender.kind) || 'agent';
    const side = kind === 'guest' ? 'left' : kind === 'system' ? 'center' : 'right';
    const name = senderLabel(sender);
    const li = h('li', {
      className: `msg msg-${side} msg-${kind}`,
      dataset: { testid: 'message', kind },
    });
    if (seq != null) li.dataset.seq = String(seq);
    // bot-panel.js matches bot messages to the bot's decisions by message id.
    if (id) li.dataset.messageId = id;
    if (clientMsgId) li.dataset.clientMsgId = clientMsgId;
    if (status) li.dataset.status = status;
    if (wa) li.dataset.wa = '1';
    const bubble = linkify(h('div', { className: 'bubble' }), text);
    if (attachment) bubble.append(renderAttachment(attachment));
    const time = timeElement(createdAt);
    if (side === 'center') {
      li.append(bubble, h('div', { className: 'msg-meta' }, time));
      return li;
    }
    li.append(
      h('div', { className: 'avatar', attrs: { 'aria-hidden': 'true' } }, initials(name)),
      h(
        'div',
        { className: 'msg-body' },
        h(
          'div',
          { className: 'msg-meta' },
          h('span', { className: 'msg-name' }, name),
          kind === 'bot' ? h('span', { className: 'msg-tag', dataset: { testid: 'bot-label' } }, 'Bot') : null,
          ' · ',
          time,
        ),
        bubble,
        side === 'right' ? h('div', { className: 'msg-status' }) : null,
      ),
    );
    paintStatus(li, error);
    return li;
  }

  function paintStatus(li, error) {
    const el = li.querySelector('.msg-status');
    if (!el) return;
    // Web chat ticks follow the guest's read cursor; WhatsApp ones come from the
    // provider (`status` frames). Both draw the same icons.
    const tick = deliveryTick(li.dataset.status, error);
    el.title = tick.text;
    const failed = li.dataset.status === 'failed';
    el.replaceChildren(
      ...(tick.icon ? [icon(tick.icon)] : []),
      h('span', { className: failed ? 'tick-text' : 'sr-only' }, tick.text),
    );
  }

  function statusFor(seq) {
    const conv = cur && store.conversations.get(cur.id);
    if (isWhatsApp(conv)) return 'pending';
    return conv && seq <= (conv.guest_read_seq || 0) ? 'read' : 'sent';
  }

  /** Fetches with the agent's token (media needs it; an <img src> cannot send it). */
  function authedFetch(path, init = {}) {
    const token = auth.load();
    const headers = { ...(init.headers || {}) };
    if (token) headers.Authorization = `Bearer ${token}`;
    return fetch(path, { ...init, headers });
  }

  /** Attachment: a button that loads hub-relayed media on demand, or a link. */
  function renderAttachment(att) {
    const label = att.filename || att.kind || 'file';
    const box = h('div', { className: `attachment attachment-${att.kind || 'file'}`, dataset: { testid: 'attachment' } });
    const url = String(att.url || '');
    if (!url.startsWith('/api/media/')) {
      // Media an agent sent by public URL: show the link as text, never as HTML.
      box.append(linkify(h('span', {}), `${label}: ${url}`));
      return box;
    }
    const button = h('button', { className: 'btn btn-small', attrs: { type: 'button' } }, `Show ${label}`);
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        const res = await authedFetch(url);
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const blob = await res.blob();
        const objectUrl = URL.createObjectURL(blob);
        let shown;
        if (att.kind === 'image' || att.kind === 'sticker') {
          shown = h('img', { className: 'attachment-img', attrs: { src: objectUrl, alt: att.caption || label } });
        } else if (att.kind === 'audio' || att.kind === 'voice') {
          shown = h('audio', { attrs: { src: objectUrl, controls: '' } });
        } else if (att.kind === 'video') {
          shown = h('video', { className: 'attachment-img', attrs: { src: objectUrl, controls: '' } });
        } else {
          shown = h('a', { attrs: { href: objectUrl, download: att.filename || 'file' } }, `Download ${label} (${formatBytesLabel(blob.size)})`);
        }
        button.replaceWith(shown);
      } catch (err) {
        button.disabled = false;
        toast(`Could not load the ${att.kind || 'file'}: ${err.message}`);
      }
    });
    box.append(button);
    return box;
  }

  function applyWaStatus(li, frame) {
    li.dataset.wa = '1';
    li.dataset.status = frame.status;
    const error = frame.error ? `${frame.error.title} (${frame.error.code})` : undefined;
    paintStatus(li, error);
  }

  /** A `status` frame: the provider's delivery report for one of our messages. */
  function onStatus(frame) {
    if (!cur || frame.conversation_id !== cur.id) return;
    const seq = Number(frame.seq);
    cur.waStatus.set(seq, frame);
    const li = cur.bySeq.get(seq);
    if (li) applyWaStatus(li, frame);
  }

  /** Read ticks for the agent side, from the guest's read cursor. */
  function refreshTicks(conv) {
    if (!cur) return;
    const upTo = conv.guest_read_seq || 0;
    for (const [seq, li] of cur.bySeq) {
      if (li.dataset.wa) continue;
      if (li.dataset.status === 'sent' && seq <= upTo) {
        li.dataset.status = 'read';
        paintStatus(li);
      }
    }
  }

  // Keeps seq order with messages still sending at the end (a failed one
  // keeps its place). Walks from the end: new messages belong there.
  function place(li, seq) {
    let ref = list.lastElementChild;
    while (ref && (ref === li || (ref.dataset.seq === undefined ? ref.dataset.status === 'sending' : Number(ref.dataset.seq) > seq))) {
      ref = ref.previousElementSibling;
    }
    list.insertBefore(li, ref ? ref.nextSibling : list.firstChild);
  }

  /** Renders one Message (API shape or `message` frame) unless its seq is shown. */
  function addMessage(m) {
    const seq = Number(m.seq);
    if (seq > cur.highest) cur.highest = seq;
    if (!cur.lowest || seq < cur.lowest) cur.lowest = seq;
    if (cur.bySeq.has(seq)) return;
    const stick = nearEnd();

    const kind = m.sender && m.sender.kind;
    // Our own message (this or another tab) replaces its "sending" copy.
    const ownId = kind !== 'guest' && m.client_msg_id ? m.client_msg_id : null;
    const pendingLi = ownId ? cur.pending.get(ownId) : null;
    if (pendingLi) {
      cur.pending.delete(ownId);
      pendingLi.remove();
    }
    if (ownId) store.settle(ownId);

    const li = buildMessage({
      id: m.id,
      sender: m.sender,
      body: m.body,
      createdAt: m.created_at,
      seq,
      status: m.status || (kind === 'agent' || kind === 'bot' ? statusFor(seq) : undefined),
      attachment: m.attachment,
      wa: Boolean(m.status),
      error: m.error ? `${m.error.title} (${m.error.code})` : undefined,
    });
    cur.bySeq.set(seq, li);
    if (cur.waStatus.has(seq)) applyWaStatus(li, cur.waStatus.get(seq));
    place(li, seq);
    if (stick) scrollToEnd();
    if (kind === 'guest') hideTyping();
  }

  function drainBuffer() {
    const frames = cur.buffer.splice(0).sort((a, b) => a.seq - b.seq);
    frames.forEach(onMessage);
  }

  function onMessage(frame) {
    if (!cur || frame.conversation_id !== cur.id) return;
    if (cur.loading) {
      cur.buffer.push(frame);
      return;
    }
    const seq = Number(frame.seq);
    if (cur.highest && seq > cur.highest + 1 && !cur.bySeq.has(seq)) {
      // The hub promises no gaps per session; this only guards against a
      // session that was not yet subscribed when earlier messages went out.
      fillGap(frame);
      return;
    }
    addMessage(frame);
    markRead();
  }

  async function fillGap(frame) {
    const c = cur;
    c.loading = true;
    c.buffer.push(frame);
    try {
      let more = true;
      while (more && c === cur) {
        const page = await api.messages(c.id, { after_seq: c.highest, limit: GAP_PAGE_SIZE });
        if (c !== cur) return;
        page.messages.forEach(addMessage);
        more = page.has_more && page.messages.length > 0;
      }
    } catch (err) {
      if (err.status !== 401) toastError(err);
    }
    if (c !== cur) return;
    c.loading = false;
    drainBuffer();
    markRead();
  }

  async function loadEarlier() {
    if (!cur || !cur.lowest) return;
    const c = cur;
    earlierBtn.disabled = true;
    try {
      const page = await api.messages(c.id, { before_seq: c.lowest, limit: PAGE_SIZE });
      if (c !== cur) return;
      const before = scroller.scrollHeight;
      const frag = document.createDocumentFragment();
      for (const m of page.messages) {
        const seq = Number(m.seq);
        if (c.bySeq.has(seq)) continue;
        const kind = m.sender && m.sender.kind;
        const li = buildMessage({
          id: m.id,
          sender: m.sender,
          body: m.body,
          createdAt: m.created_at,
          seq,
          status: kind === 'agent' || kind === 'bot' ? statusFor(seq) : undefined,
        });
        c.bySeq.set(seq, li);
        if (seq < c.lowest) c.lowest = seq;
        frag.append(li);
      }
      list.prepend(frag);
      // Keep the message the agent was reading where it was.
      scroller.scrollTop += scroller.scrollHeight - before;
      c.hasMore = Boolean(page.has_more);
      earlierBtn.hidden = !c.hasMore;
    } catch (err) {
      if (err.status !== 401) toastError(err);
    } finally {
      earlierBtn.disabled = false;
    }
  }

  // ---------------------------------------------------------------- outbox

  function showPending(entry) {
    if (!cur || cur.pending.has(entry.clientMsgId)) return;
    const li = buildMessage({
      sender: { kind: 'agent', id: store.me && store.me.id, name: store.me && store.me.name },
      body: entry.body,
      createdAt: entry.createdAt,
      clientMsgId: entry.clientMsgId,
      status: entry.status,
    });
    paintStatus(li, entry.error);
    cur.pending.set(entry.clientMsgId, li);
    list.append(li);
    scrollToEnd();
  }

  function transmit(entry) {
    if (entry.status !== 'sending' || !socket.ready) return false;
    return socket.send({
      type: 'send',
      conversation_id: entry.conversationId,
      client_msg_id: entry.clientMsgId,
      body: entry.body,
    });
  }

  /** After a reconnect: the same client_msg_id again, so the hub dedupes. */
  function flushOutbox() {
    store.unacked().forEach(transmit);
  }

  function submit() {
    if (!cur) return;
    const text = input.value.trim();
    if (!text) return;
    input.value = '';
    autoGrow();
    stopTyping();
    const entry = {
      conversationId: cur.id,
      clientMsgId: uuid(),
      body: text,
      createdAt: new Date().toISOString(),
      status: 'sending',
      error: '',
    };
    store.queue(entry);
    showPending(entry);
    transmit(entry); // when offline it waits for the next `ready`
  }

  function onAck(frame) {
    store.settle(frame.client_msg_id);
    if (!cur || frame.conversation_id !== cur.id) return;
    const li = cur.pending.get(frame.client_msg_id);
    if (!li) return;
    cur.pending.delete(frame.client_msg_id);
    const seq = Number(frame.seq);
    if (cur.bySeq.has(seq)) {
      li.remove(); // the message frame got here first
      return;
    }
    li.dataset.seq = String(seq);
    li.dataset.status = statusFor(seq);
    if (isWhatsApp(store.conversations.get(cur.id))) li.dataset.wa = '1';
    paintStatus(li);
    cur.bySeq.set(seq, li);
    if (cur.waStatus.has(seq)) applyWaStatus(li, cur.waStatus.get(seq));
    place(li, seq);
  }

  function onError(frame) {
    const entry = frame.ref ? store.outbox.get(frame.ref) : null;
    if (entry) {
      if (frame.code === 'unavailable') {
        // Nothing was stored: the same frame, later.
        setTimeout(() => transmit(entry), RETRY_UNAVAILABLE_MS + Math.random() * RETRY_UNAVAILABLE_MS);
        return;
      }
      store.fail(entry.clientMsgId, frame.message);
      return;
    }
    if (frame.ref === 'send' || frame.ref === 'resume') toast(frame.message || 'The hub refused the request.');
  }

  function onOutboxChange(conversationId) {
    if (!cur || conversationId !== cur.id) return;
    for (const entry of store.pendingFor(cur.id)) {
      const li = cur.pending.get(entry.clientMsgId);
      if (li && li.dataset.status !== entry.status) {
        li.dataset.status = entry.status;
        paintStatus(li, entry.error);
      }
    }
  }

  // ------------------------------------------------------------ read, typing

  /** Tells the hub the agent has seen everything shown, if the tab is visible. */
  function markRead() {
    if (!cur || cur.loading || !cur.highest || document.visibilityState !== 'visible') return;
    const conv = store.conversations.get(cur.id);
    if (conv && (conv.agent_read_seq || 0) >= cur.highest) return;
    if (socket.send({ type: 'read', conversation_id: cur.id, seq: cur.highest })) {
      store.markRead(cur.id, cur.highest);
      // Blue ticks on the customer's phone too; best effort.
      if (isWhatsApp(conv)) authedFetch(`/api/conversations/${encodeURIComponent(cur.id)}/whatsapp/read`, { method: 'POST' }).catch(() => {});
    }
  }

  function autoGrow() {
    input.style.height = 'auto';
    input.style.height = `${Math.min(input.scrollHeight + 2, 160)}px`;
    sendBtn.disabled = !input.value.trim();
  }

  function onInput() {
    autoGrow();
    if (!cur || !input.value.trim()) {
      stopTyping();
      return;
    }
    const now = Date.now();
    if (!typingOn || now - typingSentAt > TYPING_REPEAT_MS) {
      if (socket.send({ type: 'typing', conversation_id: cur.id, on: true })) {
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
    if (cur) socket.send({ type: 'typing', conversation_id: cur.id, on: false });
  }

  function onTyping(frame) {
    if (!cur || frame.conversation_id !== cur.id || !frame.sender) return;
    if (store.me && frame.sender.id === store.me.id) return; // another tab of mine
    if (!frame.on) return hideTyping();
    typingEl.textContent = `${senderLabel(frame.sender)} is typing…`;
    typingEl.hidden = false;
    clearTimeout(typingShowTimer);
    // The "off" frame is lost when the other side drops its connection.
    typingShowTimer = setTimeout(hideTyping, TYPING_SHOW_MS);
  }

  function hideTyping() {
    clearTimeout(typingShowTimer);
    typingEl.hidden = true;
  }

  // ---------------------------------------------------------------- actions

  async function run(button, action) {
    if (!cur) return;
    const id = cur.id;
    button.disabled = true;
    try {
      store.upsert(await action(id));
    } catch (err) {
      if (err.status !== 401) toastError(err);
    } finally {
      button.disabled = false;
    }
  }

  const listen = (el, type, fn) => el.addEventListener(type, fn, { signal });
  listen(assignBtn, 'click', () => run(assignBtn, (id) => api.assign(id, store.me.id)));
  listen(statusBtn, 'click', () => {
    const conv = cur && store.conversations.get(cur.id);
    const next = conv && conv.status === 'resolved' ? 'open' : 'resolved';
    run(statusBtn, (id) => api.setStatus(id, next));
  });
  listen(earlierBtn, 'click', loadEarlier);
  listen(form, 'submit', (e) => {
    e.preventDefault();
    submit();
  });
  listen(input, 'keydown', (e) => {
    // isComposing: Enter also confirms an IME composition.
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submit();
    }
  });
  listen(input, 'input', onInput);
  listen(document, 'visibilitychange', markRead);

  store.on('conversation', (id) => cur && id === cur.id && renderHeader(), signal);
  store.on('outbox', onOutboxChange, signal);
  // `status` frames are only of interest here, so they are picked off the socket
  // directly rather than routed through main.js.
  socket.addEventListener('frame', (e) => e.detail && e.detail.type === 'status' && onStatus(e.detail), { signal });
  signal.addEventListener('abort', close);

  return {
    open,
    close,
    flushOutbox,
    markRead,
    /**
     * Puts `text` in the composer for the agent to edit and send (bot-panel.js's
     * suggestions). No typing frame: the agent has not typed anything yet.
     */
    setDraft(text) {
      if (!cur) return;
      input.value = text;
      autoGrow();
      input.focus({ preventScroll: true });
      input.setSelectionRange(text.length, text.length);
    },
    /** Resume cursor of the open conversation, or null while nothing is loaded. */
    cursor: () => (cur && !cur.loading ? { id: cur.id, seq: cur.highest } : null),
    onFrame(frame) {
      switch (frame.type) {
        case 'message':
          onMessage(frame);
          break;
        case 'ack':
          onAck(frame);
          break;
        case 'typing':
          onTyping(frame);
          break;
        case 'error':
          onError(frame);
          break;
        default:
          break;
      }
    },
  };
}
