// CallSession: one participant's side of a video visit (visitor page, /join/<token> page, kiosk).
//
// It speaks the signaling protocol of docs/protocol.md over one WebSocket and runs one
// RTCPeerConnection to the server's media relay. It holds no UI: pages listen to its events.
//
//   import { CallSession, getLocalMedia, MicLevelMeter } from "/assets/call.js";
//
//   const session = new CallSession({
//     endpoint: "visitor" | "kiosk",  // socket /ws/visitor or /ws/kiosk
//     token,              // join-link token (visitor) or device token "k<id>.<secret>" (kiosk):
//                         //   sent in the first `auth` message, never in the URL
//     visitId,            // visitor with the session cookie instead of a token: ?visit_id=
//     stream,             // the local MediaStream (from getLocalMedia), or null: receive only
//     receiveVideo: true, // false: audio-only call (no video section in the offer)
//     stayOpen,           // keep the socket after a visit ends (default: kiosk true, visitor false)
//   });
//   session.addEventListener("state", (e) => e.detail.state);
//   session.start();             // opens the socket (reconnects by itself with backoff)
//   session.join(visitId?, {startAt?, endAt?});  // start the call (visitor: its own visit; kiosk:
//                                // the visit id from `visit_start` or the schedule); retried
//                                // while the join window is not open yet, rejoined after a lost
//                                // connection. Joined before the slot's start, the call waits in
//                                // the waiting room: connected, but nothing flows until the start.
//   session.leave();             // hang up this side (the visit goes on; join() again to rejoin)
//   session.setMuted(bool); session.setCamera(bool)   // local track.enabled switches
//   session.setStream(stream, { receiveVideo })        // new local media (e.g. audio only): rejoins
//   session.sendChat(text) -> bool                     // in-call text chat (1..1000 characters)
//   session.send(message)        // any other client message, e.g. {type: "get_schedule"} or
//                                // {type: "pin_confirm", visit_id, pin} ("v": 1 is added)
//   session.secondsLeft() -> number|null   // until the visit's end, by the server's clock;
//                                          // the slot's whole length before it starts
//   session.secondsToStart() -> number|null  // until the slot starts (0 once it has)
//   session.started() -> bool               // the slot has started (false while unknown)
//   session.figures() -> {connectedSeconds, lostSeconds}  // as seen from this side, counted
//                                                        // from the slot's start
//   session.close();             // idempotent: closes peer connection and socket for good
//
// Events (CustomEvent, data in `detail`):
//   "state"       {state}: connecting | waiting (socket ready, not in the call) | joining |
//                 connected (media flowing) | reconnecting | unreachable (the media connection
//                 did not come up, through TURN either: join() tries again) | ended | refused |
//                 closed
//   "remote_stream" {stream}  the MediaStream to show (fires again when tracks are added)
//   "visit_status", "visit_start", "schedule", "pin_accepted", "participant", "quality",
//   "welcome", "pong", "ok", and Visit now's "ring", "ring_ended", "available_visitors":
//   the server message itself
//   "warning"     {seconds_left}           from `visit_warning`
//   "ended"       {reason, message}        the visit is over (visit_ended or an end state)
//   "final_status" {status|null}           a visitor's last `visit_status` after the end: the
//                                          end state and the final ledger (null: none came)
//   "chat"        {from, text, at, visit_id}
//   "error"       {code, message, ref}     a refused request (the socket goes on)
//   "refused"     {code, message}          authentication refused: nothing more will happen
//   "poor_connection" {poor: bool}         measured loss / round trip crossed the thresholds
//   "connect_trouble" {stage}              this side's media did not connect within
//                 `welcome.connect_timeout_s` (15 s): stage "relay" (trying again through
//                 the TURN servers only) or "failed" (gave up: state "unreachable")
//   "media_not_connected"                  the server message: a side's media (this one's or
//                 the other side's) has not connected in time; staff were alerted
//
// Connecting: the first offer uses every `ice_servers` entry (host, STUN and TURN candidates).
// If the peer connection is not connected `connect_timeout_s` after the first answer (re-offers
// in between do not restart the clock), the session offers again through TURN alone
// (`iceTransportPolicy: "relay"`, the `turn:`/`turns:` URLs: TURN over TCP/TLS gets through
// networks that block UDP) and waits as long again before giving up.

import { wsUrl } from "/assets/core.js";
import { ReconnectingSocket } from "/assets/socket.js";
import {
  iceGatheringDone, iceServersFrom, relayPeerConnection, turnServersOf, withoutMdnsCandidates,
} from "/assets/webrtc.js";

const NOT_OPEN_RETRY_MS = 5000;
const GATHER_TIMEOUT_MS = 3000;
// A TURN allocation over TCP/TLS takes a few round trips more than a host candidate.
const RELAY_GATHER_TIMEOUT_MS = 5000;
const DEFAULT_CONNECT_TIMEOUT_MS = 15000;
const DISCONNECTED_GRACE_MS = 5000;
// Back on a new socket with a peer connection the server still holds but that is not
// connected (yet): give ICE this long to find its way back before offering anew.
const RESUME_GRACE_MS = 2000;
const STATS_EVERY_MS = 3000;
const POOR_LOSS_RATIO = 0.08;
const POOR_RTT_S = 0.8;
const END_STATES = new Set([
  "completed", "cancelled", "no_show", "terminated", "failed", "declined",
]);
// After the end, a visitor's socket waits this long for the status with the end state and the
// final ledger (the server writes them just after it tells the end).
const FINAL_STATUS_WAIT_MS = 5000;
const FORWARDED = [
  "welcome", "visit_status", "visit_start", "schedule", "pin_accepted", "participant",
  "quality", "pong", "media_not_connected", "ring", "ring_ended", "available_visitors", "ok",
];

/**
 * Ask for camera and microphone (or the microphone alone). Resolves with {stream} or
 * {error: "permission_denied" | "no_device" | "in_use" | "unsupported" | "media_error"}.
 */
export async function getLocalMedia({ video = true } = {}) {
  if (!navigator.mediaDevices?.getUserMedia) return { stream: null, error: "unsupported" };
  try {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true },
      video: video ? { width: { ideal: 640 }, height: { ideal: 480 } } : false,
    });
    return { stream, error: null };
  } catch (error) {
    const byName = {
      NotAllowedError: "permission_denied",
      SecurityError: "permission_denied",
      NotFoundError: "no_device",
      OverconstrainedError: "no_device",
      NotReadableError: "in_use",
      AbortError: "in_use",
    };
    return { stream: null, error: byName[error?.name] || "media_error" };
  }
}

/** Microphone level (0..1) from a stream's audio track, via a WebAudio AnalyserNode. */
export class MicLevelMeter {
  constructor(stream) {
    this.context = new AudioContext();
    this.analyser = this.context.createAnalyser();
    this.analyser.fftSize = 512;
    this.samples = new Float32Array(this.analyser.fftSize);
    this.source = this.context.createMediaStreamSource(stream);
    this.source.connect(this.analyser);
    this.closed = false;
  }

  /** Root-mean-square level, scaled so that normal speech reaches about 0.5. */
  level() {
    if (this.closed) return 0;
    if (this.context.state === "suspended") this.context.resume().catch(() => {});
    this.analyser.getFloatTimeDomainData(this.samples);
    let sum = 0;
    for (const value of this.samples) sum += value * value;
    return Math.min(1, Math.sqrt(sum / this.samples.length) * 4);
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.source.disconnect();
    this.context.close().catch(() => {});
  }
}

export class CallSession extends EventTarget {
  constructor({ endpoint, token = null, visitId = null, stream = null, receiveVideo = true,
    stayOpen } = {}) {
    super();
    if (endpoint !== "visitor" && endpoint !== "kiosk") throw new Error("endpoint?");
    this.endpoint = endpoint;
    this.token = token;
    this.visitId = visitId;
    this.stream = stream;
    this.receiveVideo = receiveVideo;
    this.stayOpen = stayOpen ?? endpoint === "kiosk";
    this.state = "idle";
    this.socket = new ReconnectingSocket(() => this.socketUrl(), {
      onMessage: (message) => this.received(message),
      onState: (state, refusal) => this.socketState(state, refusal),
      firstMessage: token ? () => ({ type: "auth", v: 1, token: this.token }) : null,
      urgent: () => this.wantJoined && !this.ended, // in a call: back as fast as possible
    });
    this.authenticated = false;
    this.pc = null;
    this.iceServers = [];
    this.clockOffsetMs = 0;
    this.startAt = null;
    this.endAt = null;
    this.wantJoined = false;
    this.ended = false;
    this.closed = false;
    this.timers = new Set();
    this.remoteStream = null;
    this.connectedSince = null;
    this.lostSince = null;
    this.connectedMs = 0;
    this.lostMs = 0;
    this.everConnected = false;
    this.poor = false;
    this.lastStats = null;
    this.statsTimer = null;
    this.disconnectTimer = null;
    this.connectTimeoutMs = DEFAULT_CONNECT_TIMEOUT_MS;
    this.connectTimer = null; // running while this side waits for its media to connect
    this.relayOnly = false; // offering through TURN alone (after a timeout)
  }

  // ------------------------------------------------------------------ public API

  start() {
    if (this.closed) return;
    this.socket.start();
  }

  join(visitId, { startAt, endAt } = {}) {
    if (this.closed) return;
    if (visitId !== undefined && visitId !== null) this.visitId = visitId;
    if (startAt) this.startAt = Date.parse(startAt);
    if (endAt) this.endAt = Date.parse(endAt);
    this.ended = false;
    this.wantJoined = true;
    // A new try starts with every candidate again (the network may have changed).
    this.relayOnly = false;
    this.stopConnectWait();
    if (this.socketReady()) this.sendOffer();
  }

  leave() {
    this.wantJoined = false;
    this.stopConnectWait();
    if (this.pc && this.socketReady()) this.send({ type: "leave", visit_id: this.visitId });
    this.closePeer();
    if (!this.closed && this.socketReady()) this.setState("waiting");
  }

  setMuted(muted) {
    for (const track of this.stream?.getAudioTracks() || []) track.enabled = !muted;
  }

  setCamera(on) {
    for (const track of this.stream?.getVideoTracks() || []) track.enabled = Boolean(on);
  }

  /** New local media or audio-only mode: a new peer connection replaces the old one. */
  setStream(stream, { receiveVideo = this.receiveVideo } = {}) {
    this.stream = stream;
    this.receiveVideo = receiveVideo;
    if (this.wantJoined && this.socketReady()) this.sendOffer();
  }

  sendChat(text) {
    const clean = String(text || "").trim();
    if (!clean || clean.length > 1000 || !this.socketReady()) return false;
    this.send({ type: "chat", text: clean });
    return true;
  }

  send(message) {
    if (!this.socketReady()) return false;
    return this.socket.send(message);
  }

  /** The server's time now, in ms. */
  serverNow() {
    return Date.now() + this.clockOffsetMs;
  }

  secondsLeft() {
    if (!this.endAt) return null;
    // Before the start the whole slot is ahead: the timer starts at the slot's length.
    const from = this.startAt ? Math.max(this.serverNow(), this.startAt) : this.serverNow();
    return Math.max(0, (this.endAt - from) / 1000);
  }

  secondsToStart() {
    if (!this.startAt) return null;
    return Math.max(0, (this.startAt - this.serverNow()) / 1000);
  }

  started() {
    return this.startAt !== null && this.serverNow() >= this.startAt;
  }

  figures() {
    const now = Date.now();
    const connected = this.connectedMs + (this.connectedSince ? this.span(this.connectedSince, now) : 0);
    const lost = this.lostMs + (this.lostSince ? this.span(this.lostSince, now) : 0);
    return { connectedSeconds: connected / 1000, lostSeconds: lost / 1000 };
  }

  /** `until - since` (local ms), counted from the slot's start only (the waiting room is free). */
  span(since, until) {
    const from = this.startAt === null ? -Infinity : this.startAt - this.clockOffsetMs;
    return Math.max(0, until - Math.max(since, from));
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.wantJoined = false;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.stopConnectWait();
    this.closePeer();
    this.socket.close();
    if (this.state !== "ended" && this.state !== "refused") this.setState("closed");
  }

  // ------------------------------------------------------------------ socket

  socketReady() {
    return this.socket.isOpen && this.authenticated;
  }

  later(fn, ms) {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (!this.closed) fn();
    }, ms);
    this.timers.add(timer);
  }

  socketUrl() {
    const query = !this.token && this.endpoint === "visitor" && this.visitId !== null
      ? `?visit_id=${encodeURIComponent(this.visitId)}` : "";
    return wsUrl(`/ws/${this.endpoint}${query}`);
  }

  socketState(state, refusal) {
    if (this.closed) return;
    if (state === "connecting") {
      this.authenticated = false;
      this.setState(this.socket.attempt ? "reconnecting" : "connecting");
    } else if (state === "refused") {
      this.authenticated = false;
      this.closePeer();
      this.closed = true;
      this.setState("refused");
      this.emit("refused", { code: refusal?.code || "refused", message: refusal?.message || "" });
    } else if (state === "closed") {
      // A rejoin after the socket is back brings the room events to the new socket.
      this.authenticated = false;
      this.setState("reconnecting");
    }
  }

  received(message) {
    this.handle(message).catch((error) => this.emit("error", {
      code: "client_error", message: String(error?.message || error), ref: message?.type,
    }));
  }

  async handle(message) {
    if (message.server_time) {
      this.clockOffsetMs = Date.parse(message.server_time) - Date.now();
    }
    if (FORWARDED.includes(message.type)) this.emit(message.type, message);
    switch (message.type) {
      case "welcome":
        this.authenticated = true;
        this.iceServers = iceServersFrom(message.ice_servers);
        if (message.connect_timeout_s > 0) this.connectTimeoutMs = message.connect_timeout_s * 1000;
        if (this.wantJoined && !this.ended) this.resume(message.media_sessions || []);
        else this.setState("waiting");
        break;
      case "visit_status":
        this.startAt = Date.parse(message.start_at);
        this.endAt = Date.parse(message.end_at);
        if (END_STATES.has(message.state)) {
          this.visitEnded(message.state, "");
          this.finalStatus(message);
        }
        break;
      case "visit_start":
        if (this.visitId === null || this.visitId === message.visit_id) {
          this.startAt = Date.parse(message.start_at);
          this.endAt = Date.parse(message.end_at);
        }
        break;
      case "answer":
        await this.applyAnswer(message);
        break;
      case "visit_warning":
        this.emit("warning", { seconds_left: message.seconds_left });
        break;
      case "visit_ended":
        this.visitEnded(message.reason, message.message || "");
        break;
      case "rejoin":
        // The server holding the call is stopping: a new socket (another server, or this one
        // once it is back) and, at its `welcome`, a new offer for the same visit.
        if (this.visitId === null || this.visitId === message.visit_id) {
          this.closePeer();
          this.setState("reconnecting");
          this.socket.reopen();
        }
        break;
      case "chat":
        this.emit("chat", message);
        break;
      case "error":
        this.refusal(message);
        break;
      default:
        break;
    }
  }

  refusal(message) {
    if (message.ref === "offer") {
      // node_draining: the server is stopping; `rejoin` (or a new socket) follows.
      this.stopConnectWait(); // no answer: nothing is trying to connect
      if (["visit_not_open_yet", "node_draining"].includes(message.code) && this.wantJoined) {
        this.closePeer();
        this.setState("waiting");
        this.later(() => this.wantJoined && this.socketReady() && this.sendOffer(),
          NOT_OPEN_RETRY_MS);
      } else if (["visit_over", "visit_ended", "visit_not_active"].includes(message.code)) {
        this.visitEnded(message.code, message.message || "");
        return;
      } else {
        this.wantJoined = false;
        this.closePeer();
        if (this.socketReady()) this.setState("waiting");
      }
    }
    this.emit("error", { code: message.code, message: message.message, ref: message.ref });
  }

  /**
   * A new socket during a call: keep the peer connection when the server still holds its other
   * end (`media_sessions` of `welcome`), else offer at once (e.g. the server restarted).
   */
  resume(mediaSessions) {
    const pc = this.pc;
    const held = pc && this.visitId !== null && mediaSessions.includes(this.visitId);
    if (!held || ["failed", "closed"].includes(pc.connectionState) ||
      pc.signalingState !== "stable") {
      this.sendOffer();
      return;
    }
    if (pc.connectionState === "connected") {
      this.setState("connected");
      return;
    }
    this.setState("reconnecting");
    clearTimeout(this.disconnectTimer);
    this.disconnectTimer = setTimeout(() => {
      if (pc === this.pc && pc.connectionState !== "connected" && this.wantJoined &&
        this.socketReady()) this.sendOffer();
    }, RESUME_GRACE_MS);
  }

  visitEnded(reason, text) {
    if (this.ended) return;
    this.ended = true;
    this.wantJoined = false;
    this.stopConnectWait();
    this.closePeer();
    this.setState("ended");
    this.emit("ended", { reason, message: text, visit_id: this.visitId });
    if (!this.stayOpen) {
      // The status with the end state and the final figures follows shortly: wait for it.
      if (this.awaitingFinal === undefined && this.endpoint === "visitor") {
        this.awaitingFinal = true;
        this.later(() => this.finalStatus(null), FINAL_STATUS_WAIT_MS);
      } else {
        this.socket.close();
      }
    }
    if (this.stayOpen) {
      this.ended = false;
      this.startAt = null;
      this.endAt = null;
      if (this.endpoint === "kiosk") this.visitId = null;
      if (this.socketReady()) this.setState("waiting");
    }
  }

  /** A visitor's last status after the end (null: none came in time); then the socket goes. */
  finalStatus(status) {
    if (!this.awaitingFinal) return;
    this.awaitingFinal = false;
    this.emit("final_status", { status });
    this.socket.close();
  }

  // ------------------------------------------------------------------ peer connection

  sendOffer() {
    this.offerSeq = (this.offerSeq || 0) + 1;
    const seq = this.offerSeq;
    this.offerOnce().catch((error) => {
      if (this.closed || seq !== this.offerSeq) return;
      this.emit("error", { code: "offer_failed", message: String(error?.message || error),
        ref: "offer" });
    });
  }

  async offerOnce() {
    this.closePeer();
    this.setState("joining");
    const relayOnly = this.relayOnly;
    const pc = relayPeerConnection(this.iceServers, { relayOnly });
    this.pc = pc;
    const audio = this.stream?.getAudioTracks()[0];
    const video = this.stream?.getVideoTracks()[0];
    if (audio) pc.addTransceiver(audio, { direction: "sendrecv", streams: [this.stream] });
    else pc.addTransceiver("audio", { direction: "recvonly" });
    if (this.receiveVideo || video) {
      if (video && this.receiveVideo) {
        pc.addTransceiver(video, { direction: "sendrecv", streams: [this.stream] });
      } else if (video) {
        pc.addTransceiver(video, { direction: "sendonly", streams: [this.stream] });
      } else {
        pc.addTransceiver("video", { direction: "recvonly" });
      }
    }
    this.remoteStream = new MediaStream();
    pc.ontrack = (event) => {
      if (pc !== this.pc) return;
      this.remoteStream.addTrack(event.track);
      this.emit("remote_stream", { stream: this.remoteStream });
    };
    pc.onconnectionstatechange = () => this.peerStateChanged(pc);
    await pc.setLocalDescription(await pc.createOffer());
    await iceGatheringDone(pc, relayOnly ? RELAY_GATHER_TIMEOUT_MS : GATHER_TIMEOUT_MS);
    if (pc !== this.pc) return;
    const sdp = withoutMdnsCandidates(pc.localDescription.sdp);
    const offer = { type: "offer", sdp, candidates_complete: true };
    if (this.visitId !== null) offer.visit_id = this.visitId;
    this.send(offer);
  }

  /** Start this side's wait for its media to connect (once per wait, not per answer). */
  expectConnection() {
    if (this.connectTimer || this.pc?.connectionState === "connected") return;
    this.connectTimer = setTimeout(() => {
      this.connectTimer = null;
      this.connectTimedOut();
    }, this.connectTimeoutMs);
  }

  stopConnectWait() {
    clearTimeout(this.connectTimer);
    this.connectTimer = null;
  }

  /** No media connection in time: through TURN alone next, or give up after that. */
  connectTimedOut() {
    if (this.closed || this.ended || !this.wantJoined) return;
    if (this.pc?.connectionState === "connected") return;
    if (!this.socketReady()) {
      this.expectConnection(); // the socket is the problem: `welcome` takes it from here
      return;
    }
    const canRelay = !this.relayOnly && turnServersOf(this.iceServers).length > 0;
    if (canRelay) {
      this.relayOnly = true;
      this.emit("connect_trouble", { stage: "relay" });
      this.sendOffer();
      return;
    }
    this.emit("connect_trouble", { stage: "failed" });
    // Hang up the connection that never came up (the server stops waiting on it).
    if (this.pc) this.send({ type: "leave", visit_id: this.visitId });
    this.wantJoined = false;
    this.closePeer();
    this.setState("unreachable");
  }

  async applyAnswer(message) {
    const pc = this.pc;
    if (!pc || pc.signalingState !== "have-local-offer") return;
    if (this.visitId === null) this.visitId = message.visit_id;
    await pc.setRemoteDescription({ type: "answer", sdp: message.sdp });
    this.expectConnection(); // ICE and DTLS start now
  }

  peerStateChanged(pc) {
    if (pc !== this.pc) return;
    const state = pc.connectionState;
    const now = Date.now();
    if (state === "connected") {
      clearTimeout(this.disconnectTimer);
      this.stopConnectWait();
      if (this.lostSince) this.lostMs += this.span(this.lostSince, now);
      this.lostSince = null;
      if (!this.connectedSince) this.connectedSince = now;
      this.everConnected = true;
      this.setState("connected");
      this.startStats();
      return;
    }
    if (state === "disconnected" || state === "failed") {
      this.stopCounting(now);
      if (this.everConnected && !this.lostSince) this.lostSince = now;
      this.setState("reconnecting");
      clearTimeout(this.disconnectTimer);
      const rejoin = () => {
        if (pc === this.pc && this.wantJoined && this.socketReady()) this.sendOffer();
      };
      // No ICE restart on the server: a failed connection is replaced by a new one.
      if (state === "failed") rejoin();
      else this.disconnectTimer = setTimeout(rejoin, DISCONNECTED_GRACE_MS);
    }
  }

  stopCounting(now) {
    if (this.connectedSince) this.connectedMs += this.span(this.connectedSince, now);
    this.connectedSince = null;
  }

  closePeer() {
    clearTimeout(this.disconnectTimer);
    clearInterval(this.statsTimer);
    this.statsTimer = null;
    this.lastStats = null;
    const now = Date.now();
    this.stopCounting(now);
    if (this.lostSince && !this.wantJoined) {
      this.lostMs += this.span(this.lostSince, now);
      this.lostSince = null;
    }
    if (this.pc) {
      const pc = this.pc;
      this.pc = null;
      pc.ontrack = null;
      pc.onconnectionstatechange = null;
      pc.close();
    }
  }

  startStats() {
    if (this.statsTimer) return;
    this.statsTimer = setInterval(() => this.measure().catch(() => {}), STATS_EVERY_MS);
  }

  /** Packet loss and round trip of the incoming media; flags a poor connection. */
  async measure() {
    const pc = this.pc;
    if (!pc) return;
    const report = await pc.getStats();
    let received = 0;
    let lost = 0;
    let rtt = null;
    report.forEach((entry) => {
      if (entry.type === "inbound-rtp") {
        received += entry.packetsReceived || 0;
        lost += entry.packetsLost || 0;
      } else if (entry.type === "candidate-pair" && entry.nominated &&
        typeof entry.currentRoundTripTime === "number") {
        rtt = entry.currentRoundTripTime;
      }
    });
    const previous = this.lastStats;
    this.lastStats = { received, lost };
    if (!previous) return;
    const newReceived = received - previous.received;
    const newLost = Math.max(0, lost - previous.lost);
    const ratio = newReceived + newLost > 0 ? newLost / (newReceived + newLost) : 0;
    const poor = ratio > POOR_LOSS_RATIO || (rtt !== null && rtt > POOR_RTT_S);
    if (poor !== this.poor) {
      this.poor = poor;
      this.emit("poor_connection", { poor, loss: ratio, rtt });
    }
  }

  // ------------------------------------------------------------------ events

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.emit("state", { state });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
