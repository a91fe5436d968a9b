// A WebSocket that reconnects by itself with backoff (1 s, 2 s, 4 s ... 30 s, with jitter) and
// matches replies to requests. The server answers one socket's requests in order, so a reply
// (or an `error` whose `ref` names the request type) belongs to the oldest pending request of
// that type. Used by the officer live view and the kiosk.

const MAX_BACKOFF_MS = 30000;
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

export class LiveSocket {
  /**
   * `url`: ws URL. `onMessage(msg)`: every server message (replies too).
   * `onState(state)`: "connecting" | "open" | "closed" | "refused".
   * `firstMessage()`: optional message sent at open (e.g. kiosk `auth`).
   */
  constructor(url, { onMessage, onState, firstMessage } = {}) {
    this.url = url;
    this.onMessage = onMessage || (() => {});
    this.onState = onState || (() => {});
    this.firstMessage = firstMessage || null;
    this.ws = null;
    this.pending = [];
    this.attempt = 0;
    this.stopped = false;
    this.timer = null;
    this.refusal = null;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  connect() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.onState("connecting");
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (error) {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.addEventListener("open", () => {
      if (this.firstMessage) ws.send(JSON.stringify(this.firstMessage()));
    });
    ws.addEventListener("message", (event) => this.received(event.data));
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.failPending(new SocketRequestError("disconnected", "the connection closed"));
      if (event.code === 1008 && this.refusal) {
        this.onState("refused", this.refusal);
        return;
      }
      this.onState("closed");
      this.scheduleReconnect();
    });
  }

  scheduleReconnect() {
    if (this.stopped) return;
    const base = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** this.attempt);
    this.attempt += 1;
    const delay = base / 2 + Math.random() * (base / 2);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /** Reconnect now (e.g. the browser says it is back online). */
  reconnectNow() {
    if (this.stopped || (this.ws && this.ws.readyState <= WebSocket.OPEN)) return;
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
    if (msg.type === "welcome") {
      this.attempt = 0;
      this.refusal = null;
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

  close() {
    this.stopped = true;
    clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = null;
    this.failPending(new SocketRequestError("closed", "closed"));
    if (ws) ws.close(1000);
  }
}

/** Wait until a peer connection has gathered all its ICE candidates (at most `ms`). */
export function iceGatheringDone(pc, ms = 5000) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    }
    function check() {
      if (pc.iceGatheringState === "complete") done();
    }
    pc.addEventListener("icegatheringstatechange", check);
  });
}
