/*
 * Poll offers (issue 4): a stack of cards under the top bar, one per
 * conversation the hub offers to this agent, each with channel, source, the
 * anonymised preview, a countdown to the end of its round and a Claim button.
 * Claims go over the socket (`claim` frame) and over HTTP when the socket is
 * down. Cards leave on `offer_closed`; the open list is reloaded from
 * GET /api/offers after every (re)connect. Contract: docs/protocol.md.
 */
import { h } from './dom.js';
import { formatTime } from './format.js';
import { toast } from './toast.js';
import { serverNow } from './routing-api.js';

const TICK_MS = 1000;
const URGENT_MS = 10000;
const CLAIM_TIMEOUT_MS = 10000;
const CHANNEL_TEXT = { widget: 'Website chat', whatsapp: 'WhatsApp', quick_chat: 'Quick chat' };

/** "1:05" for the time left in a round; "0:00" once it ran out. */
function countdown(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/**
 * @param {{store: import('./store.js').Store, routingApi: object,
 *          socket: import('./socket.js').HubSocket, signal: AbortSignal,
 *          onWon: (conversationId: string) => void}} opts
 */
export function setupOffers({ store, routingApi, socket, signal, onWon }) {
  const region = document.getElementById('offers');
  const stack = document.getElementById('offer-stack');
  const count = document.getElementById('offer-count');
  const announcer = document.getElementById('offer-announce');
  const cards = new Map(); // offer id -> {el, parts}
  const pending = []; // offer ids claimed over the socket, oldest first
  const claimTimers = new Map(); // offer id -> timeout
  let loadSeq = 0;
  let clock = 0;

  // ------------------------------------------------------------------ load

  /** Reconciles with the hub's list of open offers (after every connect). */
  async function load() {
    const mine = ++loadSeq;
    const since = Date.now();
    try {
      const { offers } = await routingApi.offers();
      if (mine !== loadSeq || signal.aborted) return;
      store.setOffers(offers || [], since, serverNow());
    } catch (err) {
      // Offer frames still arrive; the next reconnect retries the list.
      if (mine === loadSeq && err.status !== 401 && err.status !== 0) toast(err.message);
    }
  }

  // ---------------------------------------------------------------- render

  function makeCard(id) {
    const parts = {
      channel: h('span', { className: 'chip offer-channel' }),
      source: h('span', { className: 'offer-source' }),
      round: h('span', { className: 'offer-round' }),
      time: h('span', { className: 'offer-countdown', dataset: { testid: 'offer-countdown' } }),
      preview: h('p', { className: 'offer-preview', dataset: { testid: 'offer-preview' } }),
      fill: h('span', { className: 'offer-timer-fill' }),
      error: h('p', { className: 'offer-error', attrs: { role: 'alert' }, hidden: true }),
      claim: h('button', {
        type: 'button',
        className: 'btn btn-primary offer-claim',
        dataset: { testid: 'offer-claim' },
        onclick: () => claim(id),
      }),
    };
    const el = h(
      'li',
      { className: 'offer', dataset: { testid: 'offer', offerId: id } },
      h('div', { className: 'offer-head' }, parts.channel, parts.source, parts.round, parts.time),
      parts.preview,
      h('span', { className: 'offer-timer', attrs: { 'aria-hidden': 'true' } }, parts.fill),
      parts.error,
      parts.claim,
    );
    const card = { el, parts, claiming: false };
    cards.set(id, card);
    return card;
  }

  function fill(card, offer) {
    const p = card.parts;
    const channel = CHANNEL_TEXT[offer.channel] || offer.channel || 'Chat';
    p.channel.textContent = channel;
    p.source.textContent = offer.source ? `via ${offer.source}` : '';
    p.source.hidden = !offer.source;
    p.round.textContent = offer.round > 1 ? `round ${offer.round}` : '';
    p.round.hidden = !(offer.round > 1);
    p.preview.textContent = offer.preview || 'No message yet';
    p.preview.classList.toggle('is-empty', !offer.preview);
    p.claim.textContent = card.claiming ? 'Claiming…' : 'Claim';
    p.claim.disabled = card.claiming;
    p.claim.setAttribute('aria-label', `Claim ${channel} conversation${offer.preview ? `: ${offer.preview}` : ''}`);
    card.el.setAttribute('aria-busy', String(card.claiming));
    paintTime(card, offer);
  }

  function paintTime(card, offer) {
    const left = (Date.parse(offer.expires_at) || 0) - serverNow();
    const p = card.parts;
    p.time.textContent = left > 0 ? countdown(left) : "Time's up";
    p.time.title = `Round ${offer.round || 1} ends ${formatTime(Date.now() + left)}`;
    const ratio = left > 0 ? Math.min(1, left / (offer.roundMs || left)) : 0;
    p.fill.style.transform = `scaleX(${ratio.toFixed(3)})`;
    card.el.classList.toggle('is-urgent', left > 0 && left <= URGENT_MS);
    card.el.classList.toggle('is-expired', left <= 0);
  }

  function render() {
    const offers = [...store.offers.values()].sort(
      (a, b) => (Date.parse(a.expires_at) || 0) - (Date.parse(b.expires_at) || 0),
    );
    const keep = new Set(offers.map((o) => o.offer_id));
    for (const [id, card] of cards) {
      if (!keep.has(id)) {
        card.el.remove();
        cards.delete(id);
        forgetClaim(id);
      }
    }
    offers.forEach((offer, i) => {
      const isNew = !cards.has(offer.offer_id);
      const card = cards.get(offer.offer_id) || makeCard(offer.offer_id);
      fill(card, offer);
      if (stack.children[i] !== card.el) stack.insertBefore(card.el, stack.children[i] || null);
      if (isNew) announce(offer);
    });
    count.textContent = offers.length === 1 ? '1 conversation offered to you' : `${offers.length} conversations offered to you`;
    region.hidden = offers.length === 0;
    if (offers.length && !clock) clock = setInterval(tick, TICK_MS);
    if (!offers.length && clock) {
      clearInterval(clock);
      clock = 0;
    }
  }

  function tick() {
    for (const [id, card] of cards) {
      const offer = store.offers.get(id);
      if (offer) paintTime(card, offer);
    }
  }

  function announce(offer) {
    const channel = CHANNEL_TEXT[offer.channel] || offer.channel || 'chat';
    announcer.textContent = `New ${channel} conversation offered${offer.preview ? `: ${offer.preview}` : ''}`;
  }

  // ----------------------------------------------------------------- claim

  function setClaiming(id, on, error = '') {
    const card = cards.get(id);
    if (!card) return;
    card.claiming = on;
    card.parts.error.textContent = error;
    card.parts.error.hidden = !error;
    const offer = store.offers.get(id);
    if (offer) fill(card, offer);
    if (!on && error && document.activeElement === document.body) card.parts.claim.focus();
  }

  function forgetClaim(id) {
    const i = pending.indexOf(id);
    if (i >= 0) pending.splice(i, 1);
    clearTimeout(claimTimers.get(id));
    claimTimers.delete(id);
  }

  async function claim(id) {
    const card = cards.get(id);
    if (!card || card.claiming) return;
    setClaiming(id, true);
    if (socket.send({ type: 'claim', offer_id: id })) {
      pending.push(id);
      // The answer is `offer_closed` (won or lost) or an `error` with ref "claim".
      claimTimers.set(
        id,
        setTimeout(() => {
          forgetClaim(id);
          setClaiming(id, false, 'No answer from the server. Try again.');
        }, CLAIM_TIMEOUT_MS),
      );
      return;
    }
    try {
      const res = await routingApi.claim(id);
      if (signal.aborted) return;
      const offer = store.offers.get(id);
      const conv = res && res.conversation;
      if (conv) store.upsert(conv);
      closed({ offer_id: id, conversation_id: conv ? conv.id : offer && offer.conversation_id, won: true, reason: 'claimed' });
    } catch (err) {
      if (signal.aborted || err.status === 401) return;
      claimFailed(id, err.code, err.message);
    }
  }

  /** A refused claim: gone offers leave; anything else (e.g. at capacity) stays claimable. */
  function claimFailed(id, code, message) {
    forgetClaim(id);
    if (code === 'not_found' || code === 'forbidden') {
      if (store.closeOffer(id)) toast(message || 'This offer is no longer available.');
      return;
    }
    if (!cards.has(id)) return; // already closed by an offer_closed frame
    setClaiming(id, false, message || 'Could not claim this conversation.');
  }

  function closed(frame) {
    forgetClaim(frame.offer_id);
    const offer = store.closeOffer(frame.offer_id);
    if (frame.won) {
      toast('You got it', 'success');
      if (frame.conversation_id) onWon(frame.conversation_id);
    } else if (offer && frame.reason === 'claimed') {
      toast('Someone else took it', 'info');
    }
  }

  // ---------------------------------------------------------------- frames

  function onFrame(f) {
    switch (f.type) {
      case 'offer':
        store.upsertOffer(f, Date.now(), serverNow());
        break;
      case 'offer_closed':
        closed(f);
        break;
      case 'error':
        if (f.ref === 'claim') {
          const id = pending.shift();
          if (id) claimFailed(id, f.code, f.message);
          else toast(f.message || 'The claim was refused.');
        }
        break;
      default:
        break;
    }
  }

  store.on('offers', render, signal);
  signal.addEventListener('abort', () => {
    clearInterval(clock);
    clock = 0;
    for (const t of claimTimers.values()) clearTimeout(t);
    claimTimers.clear();
    pending.length = 0;
    cards.clear();
    stack.replaceChildren();
    announcer.textContent = '';
    region.hidden = true;
  });

  return { load, onFrame };
}
