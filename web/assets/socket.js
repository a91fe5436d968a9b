// ReconnectingSocket: a signaling WebSocket (docs/protocol.md) that reconnects by itself with
// backoff (1 s, 2 s, 4 s ... 30 s, with jitter; at most URGENT_MAX_MS while `urgent()` says a
// call is on) and matches replies to requests. The server answers one socket's requests in
// order, so a reply (or an `error` whose `ref` names the request type) belongs to the oldest
// pending request of that type. Used by the call session (visitor and kiosk) and the officer
// pages.
//
// Dead sockets: the server sends `heartbeat` every `welcome.heartbeat_s`. A socket that brings
// nothing for DEAD_AFTER_HEARTBEATS of them, or no `welcome` within CONNECT_TIMEOUT_MS, is
// dropped at once (no waiting for TCP or the close handshake) and a new one is opened.

const MAX_BACKOFF_MS = 30000;
const URGENT_MAX_MS = 500;
const CONNECT_TIMEOUT_MS = 4000;
const DEFAULT_HEARTBEAT_MS = 2000;
const DEAD_AFTER_HEARTBEATS = 3;
const POLICY_CLOSE = 1008; // the server refused the socket's credentials
// Which reply type answers which request type.
const REPLY_OF = {
  monitor: "answer",
  offer: "answer",
  stop_monitor: "ok",
  terminate: "ok",
  leave: "ok",
  flag: "flagged",
  pin_confirm: "pin_accepted",
  chat: null,
  get_schedule: "schedule",
};
const REQUEST_TIMEOUT_MS = 20000;

export class SocketRequestError extends Error {
  constructor(code, message) {
    super(message || code);
    this.code = code;
  }
}

/** Wait before reconnect number `attempt` (1, 2, ...): half the backoff fixed, half random. */
function reconnectDelayMs(attempt, urgent) {
  const backoff = Math.min(urgent ? URGENT_MAX_MS : MAX_BACKOFF_MS, 1000 * 2 ** (attempt - 1));
  return backoff / 2 + Math.random() * (backoff / 2);
}

export class ReconnectingSocket {
  /**
   * `url`: the ws URL, or a function that makes it for each connection.
   * `onMessage(msg)`: every server message (replies too).
   * `onState(state, refusal)`: "connecting" (`attempt` > 0: a reconnect) | "open" (the server's
   *   `welcome`) | "closed" (lost; a reconnect follows) | "refused" (closed for good with 1008
   *   after an authentication error, which comes as `refusal`).
   * `firstMessage()`: optional message sent at open (e.g. an `auth` with a token).
   * `urgent()`: optional; true while a lost socket should come back as fast as possible (a
   *   call is on): reconnect attempts at most URGENT_MAX_MS apart.
   */
  constructor(url, { onMessage, onState, firstMessage, urgent } = {}) {
    this.url = url;
    this.onMessage = onMessage || (() => {});
    this.onState = onState || (() => {});
    this.firstMessage = firstMessage || null;
    this.urgent = urgent || (() => false);
    this.heartbeatMs = DEFAULT_HEARTBEAT_MS;
    this.lastHeard = 0;
    this.watchdog = null;
    this.ws = null;
    this.pending = [];
    this.attempt = 0;
    this.stopped = false;
    this.timer = null;
    this.refusal = null;
  }

  /** Open the socket (nothing when one is already open or opening). */
  start() {
    if (this.ws) return;
    this.stopped = false;
    this.connect();
  }

  connect() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.onState("connecting");
    let ws;
    try {
      ws = new WebSocket(typeof this.url === "function" ? this.url() : this.url);
    } catch (error) {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.welcomed = false;
    this.lastHeard = Date.now();
    this.watch(500);
    ws.addEventListener("open", () => {
      if (this.firstMessage) ws.send(JSON.stringify(this.firstMessage()));
    });
    ws.addEventListener("message", (event) => {
      if (this.ws === ws) this.received(event.data);
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearInterval(this.watchdog);
      this.failPending(new SocketRequestError("disconnected", "the connection closed"));
      if (event.code === POLICY_CLOSE && this.refusal) {
        this.onState("refused", this.refusal);
        return;
      }
      this.onState("closed");
      this.scheduleReconnect();
    });
  }

  scheduleReconnect() {
    if (this.stopped) return;
    this.attempt += 1;
    this.timer = setTimeout(() => this.connect(), reconnectDelayMs(this.attempt, this.urgent()));
  }

  /** Check every `everyMs` that the socket is alive: welcomed in time, then heartbeats. */
  watch(everyMs) {
    clearInterval(this.watchdog);
    this.watchdog = setInterval(() => {
      const limit = this.welcomed ? this.heartbeatMs * DEAD_AFTER_HEARTBEATS : CONNECT_TIMEOUT_MS;
      if (this.ws && Date.now() - this.lastHeard > limit) this.dropDead();
    }, everyMs);
  }

  /** The socket went silent (a cut network): forget it and open a new one now. */
  dropDead() {
    const ws = this.ws;
    this.ws = null;
    clearInterval(this.watchdog);
    try {
      ws.close();
    } catch (error) {
      // already closing
    }
    this.failPending(new SocketRequestError("disconnected", "the connection went silent"));
    this.onState("closed");
    this.scheduleReconnect();
  }

  /** Reconnect now (e.g. the browser says it is back online). */
  reconnectNow() {
    if (this.stopped || (this.ws && this.ws.readyState <= WebSocket.OPEN)) return;
    this.attempt = 0;
    this.connect();
  }

  /** Drop this connection and open a new one at once (the server said `rejoin`). */
  reopen() {
    if (this.stopped) return;
    const ws = this.ws;
    this.ws = null;
    this.failPending(new SocketRequestError("disconnected", "reconnecting"));
    if (ws) ws.close(1000);
    this.attempt = 0;
    this.connect();
  }

  received(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch (error) {
      return;
    }
    this.lastHeard = Date.now();
    if (msg.type === "heartbeat") return;
    if (msg.type === "welcome") {
      this.attempt = 0;
      this.refusal = null;
      this.welcomed = true;
      this.heartbeatMs = (msg.heartbeat_s || DEFAULT_HEARTBEAT_MS / 1000) * 1000;
      this.watch(this.heartbeatMs / 2);
      this.onState("open");
    }
    if (msg.type === "error") {
      const index = this.pending.findIndex((p) => p.type === msg.ref);
      if (index >= 0) {
        const [request] = this.pending.splice(index, 1);
        request.reject(new SocketRequestError(msg.code, msg.message));
        return this.onMessage(msg);
      }
      if (msg.ref === "auth" || msg.ref === null || msg.ref === undefined) this.refusal = msg;
    } else {
      const index = this.pending.findIndex(
        (p) => p.reply === msg.type && (msg.type !== "ok" || msg.ref === p.type),
      );
      if (index >= 0) {
        const [request] = this.pending.splice(index, 1);
        request.resolve(msg);
      }
    }
    this.onMessage(msg);
  }

  get isOpen() {
    return Boolean(this.ws && this.ws.readyState === WebSocket.OPEN);
  }

  /** Send a message without waiting for a reply. Returns false when not connected. */
  send(msg) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify({ v: 1, ...msg }));
    return true;
  }

  /** Send a request; resolves with its reply, rejects with SocketRequestError. */
  request(msg) {
    return new Promise((resolve, reject) => {
      if (!this.isOpen) {
        reject(new SocketRequestError("disconnected", "not connected"));
        return;
      }
      const entry = { type: msg.type, reply: REPLY_OF[msg.type], resolve, reject };
      entry.timer = setTimeout(() => {
        const index = this.pending.indexOf(entry);
        if (index >= 0) this.pending.splice(index, 1);
        reject(new SocketRequestError("timeout", "no answer from the server"));
      }, REQUEST_TIMEOUT_MS);
      const done = (fn) => (value) => {
        clearTimeout(entry.timer);
        fn(value);
      };
      entry.resolve = done(resolve);
      entry.reject = done(reject);
      this.pending.push(entry);
      this.ws.send(JSON.stringify({ v: 1, ...msg }));
    });
  }

  failPending(error) {
    const pending = this.pending;
    this.pending = [];
    for (const request of pending) request.reject(error);
  }

  /** Close for good (no reconnect, no state callback); `start()` opens it again. */
  close() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.watchdog);
    const ws = this.ws;
    this.ws = null;
    this.failPending(new SocketRequestError("closed", "closed"));
    if (ws) ws.close(1000);
  }
}
