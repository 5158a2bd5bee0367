/*
 * Bot strip of the conversation view (issue 6, docs/bot.md): under the view
 * header, the open conversation's bot state (GET /api/conversations/{id}/bot) —
 * status badge, why it handed over, the AI summary for the agent — with
 * "Pause bot" / "Resume bot" and "Suggest reply" (a draft put in the composer,
 * never sent by itself). It also writes a provenance line (source, confidence,
 * cited knowledge) under each bot message, matched by message id to the bot's
 * recorded decisions. Kept live by `bot` frames and the lead `timeline` frames
 * the bot's decisions produce. User data only ever goes into text nodes.
 */
import { h } from './dom.js';
import { toastError } from './toast.js';

const STATUS_TEXT = { active: 'Active', paused: 'Paused', handed_over: 'Handed over' };
const SOURCE_TEXT = {
  ai: 'AI',
  rule: 'Rule',
  retrieval: 'Knowledge',
  handover: 'Handover',
  after_hours: 'After hours',
  fallback: 'Fallback',
  not_understood: 'Not understood',
  suggestion: 'Suggestion',
};
// A bot message is committed before its decision is recorded, so a fresh one may
// not be in `replies` yet: look again a few times, further apart each time.
const RETRY_MS = [400, 1200, 3000, 6000];
const REFRESH_DEBOUNCE_MS = 150;

function percent(c) {
  return typeof c === 'number' ? `${Math.round(c * 100)}%` : null;
}

/** Chips for cited sources: [FAQ #3] [Package #1]. */
function sourceChips(sources) {
  return (sources || []).map((s) => h('span', { className: 'bot-cite', title: s.doc_id || '' }, `[${s.label}]`));
}

/**
 * @param {{botApi: object, view: {setDraft: Function}, signal: AbortSignal}} opts
 */
export function setupBotPanel({ botApi, view, signal }) {
  const head = document.querySelector('#view-body .view-head');
  const list = document.getElementById('message-list');
  const composer = document.getElementById('composer');
  const composerInput = document.getElementById('composer-input');
  if (!head || !list) return { show() {}, onFrame() {} };

  const badge = h('span', { className: 'bot-badge', dataset: { testid: 'bot-status' }, attrs: { role: 'status' } });
  const pending = h('span', { className: 'bot-pending', hidden: true }, 'answering…');
  const reason = h('span', { className: 'bot-reason', dataset: { testid: 'bot-reason' } });
  const toggleBtn = h('button', { type: 'button', className: 'btn btn-small', dataset: { testid: 'bot-toggle' } }, 'Pause bot');
  const suggestBtn = h('button', { type: 'button', className: 'btn btn-small', dataset: { testid: 'bot-suggest' } }, 'Suggest reply');
  const summary = h('div', { className: 'bot-summary', dataset: { testid: 'bot-summary' }, hidden: true });
  const suggestion = h('div', { className: 'bot-suggestion', dataset: { testid: 'bot-suggestion' }, attrs: { role: 'status' }, hidden: true });
  const strip = h(
    'section',
    { className: 'bot-strip', dataset: { testid: 'bot-panel' }, attrs: { 'aria-label': 'Bot' }, hidden: true },
    h(
      'div',
      { className: 'bot-strip-row' },
      h('span', { className: 'bot-strip-title' }, 'Bot'),
      badge,
      pending,
      reason,
      h('span', { className: 'bot-spacer' }),
      toggleBtn,
      suggestBtn,
    ),
    summary,
    suggestion,
  );
  head.after(strip);

  let conversationId = null;
  let state = null; // the last GET …/bot answer, with `bot` frames merged in
  let loadToken = 0;
  let refreshTimer = 0;
  let retryTimer = 0;
  let retries = 0;

  async function show(id) {
    conversationId = id;
    state = null;
    retries = 0;
    clearTimeout(retryTimer);
    clearTimeout(refreshTimer);
    strip.hidden = true;
    hideSuggestion();
    await load();
  }

  async function load() {
    const id = conversationId;
    if (!id) return;
    const mine = ++loadToken;
    try {
      const s = await botApi.state(id);
      if (mine !== loadToken || id !== conversationId) return;
      state = s;
      render();
      decorateAll();
    } catch (err) {
      if (mine !== loadToken) return;
      // 403/404: not ours or gone; the view says so itself.
      if (err.status !== 401 && err.status !== 403 && err.status !== 404) toastError(err);
    }
  }

  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(load, REFRESH_DEBOUNCE_MS);
  }

  function render() {
    if (!state) {
      strip.hidden = true;
      return;
    }
    strip.hidden = false;
    const st = state.status || 'active';
    strip.dataset.status = st;
    badge.dataset.status = st;
    badge.className = `bot-badge bot-badge-${st}${!state.enabled && st === 'active' ? ' bot-badge-off' : ''}`;
    badge.textContent = !state.enabled && st === 'active' ? 'Off' : STATUS_TEXT[st] || st;
    badge.title = state.enabled ? '' : 'The bot does not answer on this channel (Bot settings).';
    pending.hidden = !state.pending || st !== 'active';
    reason.textContent = st !== 'active' && state.reason ? state.reason : '';
    reason.hidden = !reason.textContent;

    toggleBtn.textContent = st === 'active' ? 'Pause bot' : 'Resume bot';
    // Pausing a bot that does not answer here changes nothing; resuming still can.
    toggleBtn.hidden = st === 'active' && !state.enabled;

    if (state.summary) {
      summary.replaceChildren(h('strong', {}, 'AI summary for the agent'), h('p', {}, state.summary));
      summary.hidden = false;
    } else {
      summary.replaceChildren();
      summary.hidden = true;
    }
  }

  // ------------------------------------------------------------- provenance

  function replyFor(messageId) {
    return state && (state.replies || []).find((r) => r.message_id === messageId);
  }

  function decorate(li) {
    const body = li.querySelector('.msg-body');
    const id = li.dataset.messageId;
    if (!body || !id) return true;
    const r = replyFor(id);
    if (!r) return false;
    const bits = [h('span', { className: 'bot-prov-source' }, SOURCE_TEXT[r.source] || r.source)];
    const conf = percent(r.confidence);
    if (conf) bits.push(` · confidence ${conf}`);
    const cites = sourceChips(r.sources);
    if (cites.length) bits.push(' · ', ...cites);
    if (r.escalated) bits.push(` · handed over${r.reason ? `: ${r.reason}` : ''}`);
    const line = h('div', {
      className: 'bot-prov',
      dataset: { testid: 'bot-provenance', source: r.source },
      title: r.prompt_version ? `Prompt ${r.prompt_version}` : '',
    }, ...bits);
    const old = body.querySelector('.bot-prov');
    if (old) old.replaceWith(line);
    else body.append(line);
    return true;
  }

  function decorateAll() {
    let missing = false;
    for (const li of list.querySelectorAll('li[data-kind="bot"][data-message-id]')) {
      if (!decorate(li)) missing = true;
    }
    if (!missing) {
      retries = 0;
      return;
    }
    if (retries >= RETRY_MS.length || !state) return;
    clearTimeout(retryTimer);
    retryTimer = setTimeout(load, RETRY_MS[retries++]);
  }

  // New bot messages (live, or "Load earlier") get their line once they show.
  const observer = new MutationObserver((records) => {
    if (!state) return;
    const added = records.some((r) => [...r.addedNodes].some((n) => n.dataset && n.dataset.kind === 'bot'));
    if (added) {
      retries = 0;
      decorateAll();
    }
  });
  observer.observe(list, { childList: true });

  // -------------------------------------------------------------- actions

  async function toggle() {
    if (!state || !conversationId) return;
    const id = conversationId;
    const next = state.status === 'active' ? 'paused' : 'active';
    toggleBtn.disabled = true;
    try {
      const s = await botApi.setState(id, next);
      if (id !== conversationId) return;
      Object.assign(state, { status: s.status, reason: s.reason, summary: s.summary });
      render();
    } catch (err) {
      if (err.status !== 401) toastError(err);
    } finally {
      toggleBtn.disabled = false;
    }
  }

  async function suggest() {
    if (!conversationId) return;
    const id = conversationId;
    suggestBtn.disabled = true;
    suggestBtn.textContent = 'Thinking…';
    try {
      const d = await botApi.suggest(id);
      if (id !== conversationId) return;
      if (!d.text) {
        showSuggestion([h('span', {}, 'Nothing to suggest for this conversation yet.')], 'empty');
        return;
      }
      view.setDraft(d.text);
      const facts = [h('strong', {}, 'Suggested draft in the composer'), ' — review and edit before sending.'];
      const conf = percent(d.confidence);
      const meta = [SOURCE_TEXT[d.source] || d.source, conf && `confidence ${conf}`].filter(Boolean).join(' · ');
      const cites = sourceChips(d.sources);
      facts.push(h('span', { className: 'bot-suggestion-meta', dataset: { testid: 'bot-suggestion-meta' } }, meta, cites.length ? ' · ' : '', ...cites));
      showSuggestion(facts, 'draft');
    } catch (err) {
      if (err.status !== 401) toastError(err);
    } finally {
      suggestBtn.disabled = false;
      suggestBtn.textContent = 'Suggest reply';
    }
  }

  function showSuggestion(children, kind) {
    const close = h('button', { type: 'button', className: 'bot-suggestion-close', attrs: { 'aria-label': 'Dismiss' }, onclick: hideSuggestion }, '×');
    suggestion.dataset.kind = kind;
    suggestion.replaceChildren(h('div', { className: 'bot-suggestion-text' }, ...children), close);
    suggestion.hidden = false;
  }

  function hideSuggestion() {
    suggestion.hidden = true;
    suggestion.replaceChildren();
    delete suggestion.dataset.kind;
  }

  const listen = (el, type, fn) => el && el.addEventListener(type, fn, { signal });
  listen(toggleBtn, 'click', toggle);
  listen(suggestBtn, 'click', suggest);
  // Once the draft is sent (or thrown away) its note no longer describes the composer.
  listen(composer, 'submit', hideSuggestion);
  listen(composerInput, 'keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && suggestion.dataset.kind === 'draft') hideSuggestion();
  });
  listen(composerInput, 'input', () => {
    if (!composerInput.value.trim() && suggestion.dataset.kind === 'draft') hideSuggestion();
  });
  signal.addEventListener('abort', () => {
    observer.disconnect();
    clearTimeout(retryTimer);
    clearTimeout(refreshTimer);
    strip.remove();
  });

  return {
    show,
    onFrame(f) {
      if (!conversationId || f.conversation_id !== conversationId) return;
      switch (f.type) {
        case 'bot':
          if (state) {
            Object.assign(state, { status: f.status, reason: f.reason, summary: f.summary });
            render();
          }
          scheduleRefresh(); // `pending` and the decisions are not in the frame
          break;
        case 'timeline':
          if (String(f.kind || '').startsWith('bot_')) scheduleRefresh();
          break;
        case 'message':
          // A customer message starts a bot job; a bot message ends one.
          if (f.sender && (f.sender.kind === 'guest' || f.sender.kind === 'bot')) scheduleRefresh();
          break;
        default:
          break;
      }
    },
  };
}
