/*
 * Inbox state: who is signed in, the agents of their teams, the conversation
 * summaries with live unread counts, the list filter, which conversations this
 * tab watches (their resume cursors) and the outbox of unacknowledged sends.
 * Views subscribe to topics; only this module mutates the state.
 *
 * Topics: 'list' (summaries, filter or search changed), 'conversation' (detail:
 * id of a changed summary), 'outbox' (detail: conversation id), 'offers' (the
 * open poll offers changed), 'workload' (detail: team id of a new snapshot).
 */

export class Store extends EventTarget {
  constructor() {
    super();
    this.me = null; // Agent
    this.agents = new Map(); // id -> Agent
    this.presence = new Map(); // agent id -> online|away|offline (leads and admins)
    this.conversations = new Map(); // id -> Conversation + {unread, seenSeq}
    this.filter = 'all'; // all | mine | unassigned
    this.narrow = { channel: '', status: '', team: '' }; // '' = any
    this.query = '';
    this.searchHits = null; // Set of ids the server matched for `query`
    this.activeId = null;
    this.watched = new Set(); // ids this tab sent `resume` for
    this.outbox = new Map(); // client_msg_id -> {conversationId, clientMsgId, body, createdAt, status, error}
    this.offers = new Map(); // offer id -> Offer + {receivedAt, roundMs}
    this.closedOffers = new Map(); // offer id -> closed at (ms); a stale list must not revive them
    this.workloads = new Map(); // team id -> TeamWorkload + {receivedAt} (leads and admins)
  }

  emit(topic, detail) {
    this.dispatchEvent(new CustomEvent(topic, { detail }));
  }

  on(topic, fn, signal) {
    this.addEventListener(topic, (e) => fn(e.detail), { signal });
  }

  setMe(agent) {
    this.me = agent;
  }

  setAgents(list) {
    this.agents = new Map(list.map((a) => [a.id, a]));
    if (this.activeId) this.emit('conversation', this.activeId);
    this.emit('list');
  }

  agentName(id) {
    if (!id) return 'Unassigned';
    if (this.me && id === this.me.id) return 'You';
    const agent = this.agents.get(id);
    return agent ? agent.name : 'Agent';
  }

  // ---------------------------------------------------------- conversations

  /**
   * Merges a summary from the API or a `conversation` frame. Unread counts are
   * tracked live from message frames; the summary carries no count, so for a
   * conversation whose last message is the guest's we estimate it as
   * last_seq - agent_read_seq (agent replies in between would be counted too,
   * but an agent who replied has normally read first).
   */
  upsert(summary, { silent = false } = {}) {
    if (!summary || !summary.id) return null;
    const prev = this.conversations.get(summary.id);
    const conv = { ...prev, ...summary };
    const lastSeq = Number(summary.last_seq) || 0;
    if (prev) {
      // Frames may overtake one another: never let an older summary roll back
      // what message and read frames already told us.
      if (prev.last_seq > lastSeq) {
        conv.last_seq = prev.last_seq;
        conv.last_message = prev.last_message;
        conv.last_message_at = prev.last_message_at;
      }
      conv.agent_read_seq = Math.max(prev.agent_read_seq || 0, summary.agent_read_seq || 0);
      conv.guest_read_seq = Math.max(prev.guest_read_seq || 0, summary.guest_read_seq || 0);
      conv.seenSeq = Math.max(prev.seenSeq, lastSeq);
      conv.unread = lastSeq > prev.seenSeq ? estimateUnread(conv) : prev.unread;
      if (conv.agent_read_seq >= conv.last_seq) conv.unread = 0;
    } else {
      conv.seenSeq = lastSeq;
      conv.unread = estimateUnread(conv);
    }
    this.conversations.set(conv.id, conv);
    if (!silent) {
      this.emit('conversation', conv.id);
      this.emit('list');
    }
    return conv;
  }

  upsertMany(list) {
    for (const summary of list) this.upsert(summary, { silent: true });
    this.emit('list');
  }

  /**
   * Applies a `message` frame to its summary. Returns false when the
   * conversation is unknown (the caller fetches it; the fetched summary
   * already includes this message).
   */
  applyMessage(frame) {
    const conv = this.conversations.get(frame.conversation_id);
    if (!conv) return false;
    const seq = Number(frame.seq);
    if (seq > conv.seenSeq) {
      conv.seenSeq = seq;
      if (frame.sender && frame.sender.kind === 'guest' && seq > (conv.agent_read_seq || 0)) conv.unread++;
    }
    if (seq > (conv.last_seq || 0)) {
      conv.last_seq = seq;
      conv.last_message = {
        seq,
        body: frame.body,
        sender_kind: frame.sender ? frame.sender.kind : 'guest',
        created_at: frame.created_at,
      };
      conv.last_message_at = frame.created_at;
    }
    this.emit('conversation', conv.id);
    this.emit('list');
    return true;
  }

  applyRead(frame) {
    const conv = this.conversations.get(frame.conversation_id);
    if (!conv || !frame.reader) return;
    const seq = Number(frame.seq) || 0;
    if (frame.reader.kind === 'guest') {
      if (seq <= (conv.guest_read_seq || 0)) return;
      conv.guest_read_seq = seq;
    } else {
      if (seq <= (conv.agent_read_seq || 0)) return;
      conv.agent_read_seq = seq;
      conv.unread = seq >= conv.seenSeq ? 0 : Math.min(conv.unread, conv.seenSeq - seq);
    }
    this.emit('conversation', conv.id);
    this.emit('list');
  }

  /** This tab has shown everything up to `seq` to the agent. */
  markRead(id, seq) {
    this.applyRead({ conversation_id: id, seq, reader: { kind: 'agent' } });
  }

  applyAssigned(frame) {
    const conv = this.conversations.get(frame.conversation_id);
    if (!conv) return;
    conv.assignee_id = frame.agent_id ?? null;
    this.emit('conversation', conv.id);
    this.emit('list');
  }

  setPresence(agentId, status) {
    this.presence.set(agentId, status);
  }

  // ------------------------------------------------------------ list filter

  setFilter(filter) {
    this.filter = filter;
    this.emit('list');
  }

  /** Narrows the list by channel, status and/or team ('' = any). */
  setNarrow(narrow) {
    this.narrow = { ...this.narrow, ...narrow };
    this.emit('list');
  }

  setQuery(query, hits) {
    this.query = query;
    this.searchHits = query ? new Set(hits) : null;
    this.emit('list');
  }

  matches(conv) {
    if (this.filter === 'mine' && conv.assignee_id !== (this.me && this.me.id)) return false;
    if (this.filter === 'unassigned' && conv.assignee_id) return false;
    const { channel, status, team } = this.narrow;
    if (channel && conv.channel !== channel) return false;
    if (status && conv.status !== status) return false;
    if (team && conv.team_id !== team) return false;
    if (this.query) {
      if (this.searchHits && this.searchHits.has(conv.id)) return true;
      // Live arrivals after the search ran: match what we can see locally.
      const q = this.query.toLowerCase();
      const c = conv.contact || {};
      const fields = [c.name, c.email, c.phone, conv.last_message && conv.last_message.body];
      return fields.some((f) => typeof f === 'string' && f.toLowerCase().includes(q));
    }
    return true;
  }

  /** Filtered summaries, most recent activity first. */
  visibleConversations() {
    const time = (c) => Date.parse(c.last_message_at || c.created_at) || 0;
    return [...this.conversations.values()].filter((c) => this.matches(c)).sort((a, b) => time(b) - time(a));
  }

  totalUnread() {
    let n = 0;
    for (const c of this.conversations.values()) n += c.unread || 0;
    return n;
  }

  // ------------------------------------------------------- watching, cursors

  watch(id) {
    this.watched.add(id);
  }

  /** Resume cursors for the watched conversations, from their summaries. */
  cursors() {
    const out = {};
    for (const id of this.watched) {
      const conv = this.conversations.get(id);
      out[id] = conv ? conv.seenSeq : 0;
    }
    return out;
  }

  // ------------------------------------------------------- offers, workload

  /** Adds or refreshes an offer (`offer` frame or GET /api/offers); false if it is closed. */
  upsertOffer(offer, now = Date.now(), serverNow = now) {
    if (!offer || !offer.offer_id || this.closedOffers.has(offer.offer_id)) return false;
    const prev = this.offers.get(offer.offer_id);
    const expires = Date.parse(offer.expires_at);
    // Round length for the countdown bar: from when this round was first seen.
    const sameRound = prev && prev.round === offer.round && prev.expires_at === offer.expires_at;
    const roundMs = sameRound ? prev.roundMs : Math.max(1000, (expires || serverNow) - serverNow);
    this.offers.set(offer.offer_id, { ...prev, ...offer, receivedAt: now, roundMs });
    this.emit('offers');
    return true;
  }

  /** Removes an offer for good; returns the removed offer, if it was shown. */
  closeOffer(offerId, now = Date.now()) {
    this.closedOffers.set(offerId, now);
    // Forget old tombstones: offer ids are never reused.
    for (const [id, at] of this.closedOffers) if (now - at > 600000) this.closedOffers.delete(id);
    const offer = this.offers.get(offerId) || null;
    if (offer) {
      this.offers.delete(offerId);
      this.emit('offers');
    }
    return offer;
  }

  /**
   * Replaces the offers with the hub's list fetched at `since`: offers not in
   * it and not refreshed by a frame after `since` were closed while we could
   * not hear about it.
   */
  setOffers(list, since, serverNow) {
    const keep = new Set(list.map((o) => o.offer_id));
    for (const [id, offer] of this.offers) if (!keep.has(id) && offer.receivedAt < since) this.offers.delete(id);
    for (const offer of list) {
      const shown = this.offers.get(offer.offer_id);
      if (!shown || shown.receivedAt < since) this.upsertOffer(offer, since, serverNow);
    }
    this.emit('offers');
  }

  setWorkload(workload, now = Date.now()) {
    if (!workload || !workload.team_id) return;
    const prev = this.workloads.get(workload.team_id);
    // Frames and the HTTP snapshot may cross: keep the newer snapshot.
    if (prev && Date.parse(prev.at) > Date.parse(workload.at)) return;
    this.workloads.set(workload.team_id, { ...workload, receivedAt: now });
    this.emit('workload', workload.team_id);
  }

  // ----------------------------------------------------------------- outbox

  queue(entry) {
    this.outbox.set(entry.clientMsgId, entry);
    this.emit('outbox', entry.conversationId);
  }

  pendingFor(conversationId) {
    return [...this.outbox.values()].filter((e) => e.conversationId === conversationId);
  }

  /** Entries still waiting for an ack (failed ones are final). */
  unacked() {
    return [...this.outbox.values()].filter((e) => e.status === 'sending');
  }

  settle(clientMsgId) {
    const entry = this.outbox.get(clientMsgId);
    if (!entry) return null;
    this.outbox.delete(clientMsgId);
    this.emit('outbox', entry.conversationId);
    return entry;
  }

  fail(clientMsgId, reason) {
    const entry = this.outbox.get(clientMsgId);
    if (!entry) return null;
    entry.status = 'failed';
    entry.error = reason || '';
    this.emit('outbox', entry.conversationId);
    return entry;
  }
}

function estimateUnread(conv) {
  const last = conv.last_message;
  if (!last || last.sender_kind !== 'guest') return 0;
  return Math.max(0, (Number(conv.last_seq) || 0) - (Number(conv.agent_read_seq) || 0));
}
