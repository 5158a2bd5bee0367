/*
 * WebSocket client for /ws/agent: sends the auth frame first, resumes the
 * watched conversations with per-conversation cursors after every (re)connect,
 * detects dead links with ping/pong, and reconnects with backoff plus jitter.
 * It knows nothing about the UI; everything is reported as events.
 * Contract: docs/protocol.md.
 *
 * Events (CustomEvent, payload in `detail`):
 *   state        'connecting' | 'connected' | 'reconnecting' | 'offline'
 *   hello        the hello frame
 *   ready        first `resumed` after a connect: safe to resend unacknowledged sends
 *   frame        every other server frame
 *   unauthorized the hub refused the token (close 1008); the socket stops
 */

const PING_EVERY_MS = 20000;
const MAX_MISSED_PONGS = 2;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15000;

export class HubSocket extends EventTarget {
  /**
   * @param {{url: string, getToken: () => string|null, getCursors: () => Record<string, number>}} opts
   */
  constructor({ url, getToken, getCursors }) {
    super();
    this.url = url;
    this.getToken = getToken;
    this.getCursors = getCursors;
    this.ws = null;
    this.live = false; // hello received on the current socket
    this.ready = false; // first resumed received on the current socket
    this.stopped = true;
    this.attempts = 0;
    this.retryTimer = 0;
    this.pingTimer = 0;
    this.missedPongs = 0;
    this.onOnline = () => {
      this.attempts = 0;
      if (!this.ws && !this.stopped) this.connect();
    };
    this.onOffline = () => this.kill();
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    window.addEventListener('online', this.onOnline);
    window.addEventListener('offline', this.onOffline);
    this.connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener('online', this.onOnline);
    window.removeEventListener('offline', this.onOffline);
    clearTimeout(this.retryTimer);
    const ws = this.ws;
    this.detach();
    if (ws) ws.close(1000);
  }

  /** Sends a frame if the session is authenticated; returns whether it went out. */
  send(frame) {
    if (!this.ws || !this.live || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Subscribes to more conversations now; reconnects use getCursors() instead. */
  resume(cursors) {
    return this.send({ type: 'resume', cursors });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  connect() {
    clearTimeout(this.retryTimer);
    if (this.ws || this.stopped) return;
    const token = this.getToken();
    if (!token) return;
    this.emit('state', this.attempts ? 'reconnecting' : 'connecting');
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', token }));
    ws.onmessage = (ev) => {
      if (this.ws === ws) this.onFrame(ev.data);
    };
    // `error` is always followed by `close`, which handles recovery.
    ws.onclose = (ev) => {
      if (this.ws === ws) this.gone(ev.code);
    };
  }

  detach() {
    const ws = this.ws;
    if (ws) ws.onopen = ws.onmessage = ws.onclose = null;
    this.ws = null;
    this.live = false;
    this.ready = false;
    clearInterval(this.pingTimer);
  }

  gone(code) {
    this.detach();
    if (code === 1008) {
      // The token is no longer accepted; reconnecting with it cannot work.
      this.stopped = true;
      this.emit('state', 'offline');
      this.emit('unauthorized');
      return;
    }
    this.scheduleReconnect();
  }

  // A half-open socket may take minutes to report `close`; drop it ourselves.
  kill() {
    const ws = this.ws;
    if (!ws) return;
    this.detach();
    try {
      ws.close();
    } catch {
      /* already closing */
    }
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    clearTimeout(this.retryTimer);
    if (this.stopped) return;
    const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(this.attempts, 10));
    this.attempts++;
    this.emit('state', navigator.onLine === false ? 'offline' : 'reconnecting');
    this.retryTimer = setTimeout(() => this.connect(), cap / 2 + Math.random() * (cap / 2));
  }

  ping() {
    if (this.missedPongs >= MAX_MISSED_PONGS) {
      this.kill();
      return;
    }
    this.missedPongs++;
    this.send({ type: 'ping' });
  }

  onFrame(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (!frame || typeof frame !== 'object') return;
    this.missedPongs = 0; // any frame proves the link is alive

    switch (frame.type) {
      case 'hello':
        this.live = true;
        this.resume(this.getCursors());
        clearInterval(this.pingTimer);
        this.pingTimer = setInterval(() => this.ping(), PING_EVERY_MS);
        this.emit('state', 'connected');
        this.emit('hello', frame);
        break;
      case 'resumed':
        if (!this.ready) {
          this.ready = true;
          this.attempts = 0;
          this.emit('ready', frame);
        }
        this.emit('frame', frame);
        break;
      case 'pong':
        break;
      default:
        this.emit('frame', frame);
    }
  }
}
