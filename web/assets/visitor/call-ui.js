// The visitor's call screen (waiting room, live call, summary), shared by /visitor/call
// (signed in, ?visit_id=) and /join/<token> (the e-mailed link, no sign-in).
import { announce, api, el, fmtDateTime, fmtDuration, fmtTime, t, visitPhase } from "/assets/core.js";
import { CallSession, MicLevelMeter, getLocalMedia } from "/assets/call.js";

const $ = (id) => document.getElementById(id);
const ERROR_KEYS = new Set([
  "join_link_invalid", "join_link_expired", "join_link_not_yet_valid", "join_link_revoked",
  "visit_not_active",
  "not_found", "session_expired", "wrong_role", "visit_required", "auth_required",
  "auth_timeout", "visit_not_open_yet", "visit_over", "visit_ended", "media_unavailable",
  "offer_no_usable_candidates", "offer_failed", "rate_limited",
]);

function codeText(code, fallback) {
  if (ERROR_KEYS.has(code)) return t(`call.error.${code}`);
  return fallback || t("call.error.generic");
}

function minutesText(seconds) {
  return t("call.minutes", { minutes: Math.round((seconds || 0) / 60) });
}

const END_STATES = new Set(["completed", "cancelled", "no_show", "terminated", "failed"]);
const FINAL_POLL_MS = 500;
const FINAL_WAIT_MS = 5000;

/**
 * Run the call screen. `visit`: the visit from GET /api/visits/{id} (signed-in visitor) or null
 * (join link). `sessionOptions`: {token} or {visitId} for the CallSession.
 */
export function runCallScreen({ visit, sessionOptions, signedIn }) {
  const ui = new CallScreen(visit, sessionOptions, signedIn);
  ui.start();
  return ui;
}

class CallScreen {
  constructor(visit, sessionOptions, signedIn) {
    this.visit = visit;
    this.signedIn = signedIn;
    this.sessionOptions = sessionOptions;
    this.stream = null;
    this.meter = null;
    this.audioOnly = false;
    this.status = null;
    this.session = null;
    this.joined = false;
    this.finished = false;
    this.tickTimer = null;
    this.chatIds = new Set();
  }

  start() {
    this.describeVisit();
    $("waiting").hidden = false;
    $("join-button").addEventListener("click", () => this.join());
    $("retry-media").addEventListener("click", () => this.openMedia({ video: true }));
    $("use-audio-only").addEventListener("click", () => this.openMedia({ video: false }));
    $("mute-button").addEventListener("click", (e) => this.toggleMute(e.currentTarget));
    $("camera-button").addEventListener("click", (e) => this.toggleCamera(e.currentTarget));
    $("audio-only-button").addEventListener("click", () => this.setAudioOnly(!this.audioOnly));
    $("poor-audio-only").addEventListener("click", () => this.setAudioOnly(true));
    $("leave-button").addEventListener("click", () => this.leave());
    $("withdraw-button").addEventListener("click", () => this.withdraw());
    $("rejoin-button").addEventListener("click", () => this.rejoin());
    $("connect-retry").addEventListener("click", () => this.retryConnect());
    $("chat-form").addEventListener("submit", (e) => this.sendChat(e));
    if (!this.signedIn) $("summary-home").href = "/signin?next=%2Fvisitor%2Fvisits";
    this.openSession();
    this.openMedia({ video: true });
    this.tickTimer = setInterval(() => this.tick(), 1000);
    window.addEventListener("pagehide", () => this.close());
  }

  describeVisit() {
    const visit = this.visit;
    if (!visit) {
      $("call-notice").textContent = t("call.notice.generic");
      return;
    }
    $("call-who").textContent = t("call.with", { person: visit.person_name,
      facility: visit.facility_name });
    $("call-notice").textContent = t(visit.privileged ? "call.notice.privileged"
      : "call.notice.monitored");
    const own = Intl.DateTimeFormat().resolvedOptions().timeZone;
    let when = t("call.when", { time: fmtDateTime(visit.start_utc, visit.timezone),
      zone: visit.timezone });
    if (own !== visit.timezone) {
      when += " " + t("call.when_own", { time: fmtDateTime(visit.start_utc, own) });
    }
    $("visit-when").textContent = when;
  }

  async loadChatHistory() {
    try {
      const messages = await api("GET", `/api/visits/${this.visit.id}/messages`);
      for (const message of messages || []) this.showChat(message);
    } catch (ignored) {
      // No history yet (or not available): the live chat still works.
    }
  }

  openSession() {
    const session = new CallSession({ endpoint: "visitor", ...this.sessionOptions,
      stream: this.stream });
    this.session = session;
    if (this.visit) {
      // Known before the first status: whether a connection that comes up is in the waiting room.
      session.startAt = Date.parse(this.visit.start_utc);
      session.endAt = Date.parse(this.visit.end_utc);
    }
    // The status with the end state and the final ledger, after the end (join links).
    this.finalStatus = new Promise((resolve) => {
      session.addEventListener("final_status", (e) => resolve(e.detail.status));
    });
    session.addEventListener("state", (e) => this.stateChanged(e.detail.state));
    session.addEventListener("visit_status", (e) => this.visitStatus(e.detail));
    session.addEventListener("remote_stream", (e) => this.remoteStream(e.detail.stream));
    session.addEventListener("warning", (e) => this.warning(e.detail.seconds_left));
    session.addEventListener("ended", (e) => this.ended(e.detail));
    session.addEventListener("refused", (e) => this.refused(e.detail));
    session.addEventListener("error", (e) => this.error(e.detail));
    session.addEventListener("chat", (e) => this.showChat(e.detail));
    // The live feed starts at each (re)connection: fetch what came while the socket was away.
    session.addEventListener("welcome", () => {
      if (this.visit) this.loadChatHistory();
    });
    session.addEventListener("participant", (e) => this.participant(e.detail));
    session.addEventListener("connect_trouble", (e) => this.connectTrouble(e.detail.stage));
    session.addEventListener("media_not_connected", (e) => this.otherCannotConnect(e.detail));
    session.addEventListener("ring_ended", (e) => {
      if (e.detail.outcome !== "accepted") this.ended({ reason: `ring_${e.detail.outcome}` });
    });
    session.addEventListener("poor_connection", (e) => {
      $("poor-banner").hidden = !e.detail.poor || this.audioOnly;
      if (e.detail.poor && !this.audioOnly) announce(t("call.poor"));
    });
    session.start();
  }

  // ---------------------------------------------------------------- local media

  async openMedia({ video }) {
    this.stopMedia();
    const { stream, error } = await getLocalMedia({ video });
    $("media-problem").hidden = !error;
    if (error) {
      const key = video ? `call.media.${error}` : `call.media.audio_${error}`;
      $("media-error").textContent = t(key);
      $("use-audio-only").hidden = !video;
      if (!video) {
        // No microphone either: the visitor can still watch, listen and chat.
        this.session?.setStream(null, { receiveVideo: !this.audioOnly });
      }
      return;
    }
    this.stream = stream;
    if (video) this.audioOnly = false;
    $("preview").srcObject = video ? stream : null;
    $("preview").hidden = !video;
    $("self-video").srcObject = video ? stream : null;
    $("self-video").hidden = !video;
    try {
      this.meter = new MicLevelMeter(stream);
      this.animateMeter();
    } catch (ignored) {
      this.meter = null;
    }
    this.session?.setStream(stream, { receiveVideo: !this.audioOnly });
    this.syncButtons();
  }

  animateMeter() {
    const meter = this.meter;
    const step = () => {
      if (meter !== this.meter || meter.closed) return;
      $("mic-level").value = meter.level();
      requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  }

  stopMedia() {
    this.meter?.close();
    this.meter = null;
    for (const track of this.stream?.getTracks() || []) track.stop();
    this.stream = null;
  }

  // ---------------------------------------------------------------- waiting room

  visitStatus(status) {
    this.status = status;
    this.showRinging(status.state === "ringing");
    const kiosk = $("kiosk-status");
    const started = status.seconds_to_start <= 0;
    kiosk.hidden = !started || status.kiosk_online || this.finished;
    kiosk.textContent = t("call.kiosk_offline");
    // "Luis will join at 7:55 PM (your time)": the person's first name, the start in own time.
    const own = Intl.DateTimeFormat().resolvedOptions().timeZone;
    const person = status.person_first_name || this.visit?.person_name || t("call.chat.them");
    $("waiting-who").textContent = t("call.waiting.joins_at", {
      person, time: fmtTime(status.start_at, own) });
    if (!this.visit) {
      // Join links carry no visit details: the server's status says whether it is privileged.
      $("call-notice").textContent = t(status.privileged ? "call.notice.privileged"
        : "call.notice.monitored");
      const own = Intl.DateTimeFormat().resolvedOptions().timeZone;
      $("visit-when").textContent = t("call.when_local", {
        time: fmtDateTime(status.start_at, own), end: fmtTime(status.end_at, own) });
    }
    this.tick();
  }

  tick() {
    if (!this.session) return;
    const left = this.session.secondsLeft();
    if (left !== null) $("time-left").textContent = fmtDuration(left);
    if (!this.status) return;
    const now = this.session.serverNow();
    const waiting = !this.session.started();
    $("waiting-who").hidden = !waiting;
    // The same words as the visit lists and the officer's tiles: "Starts in 4:05".
    $("visit-countdown").textContent = waiting
      ? visitPhase(this.status.state, this.status.start_at, this.status.end_at, now)
        ?? t("call.starts_in", { time: fmtDuration(this.session.secondsToStart()) })
      : t("call.started", { time: fmtDuration(left ?? 0) });
    if (!waiting && this.joined && this.session.state === "connected") this.showCall();
    const toStart = this.session.secondsToStart();
    if (waiting && toStart !== null && toStart < 1.5 && !this.startTimer) {
      // Open the call view at the start itself, not at the next tick.
      this.startTimer = setTimeout(() => {
        this.startTimer = null;
        this.tick();
      }, toStart * 1000 + 20);
    }
  }

  /** Visit now: ringing until the other side answers; answered, the call starts by itself. */
  showRinging(ringing) {
    const wasRinging = this.ringing;
    this.ringing = ringing;
    $("ring-status").hidden = !ringing;
    $("visit-countdown").hidden = ringing;
    $("join-button").disabled = ringing;
    if (ringing) {
      const who = this.visit?.person_name || t("call.chat.them");
      $("ring-status-text").textContent = t("call.ring.calling", { person: who });
      if (!wasRinging) announce(t("call.ring.calling", { person: who }));
    } else if (wasRinging && !this.finished) {
      announce(t("call.ring.answered"));
    }
    // A visit started now (either side rang) joins by itself once it is answered.
    const answered = ["ready", "live"].includes(this.status?.state);
    if (answered && this.visit?.on_demand && !this.joined && !this.finished && !this.autoJoined) {
      this.autoJoined = true;
      this.join();
    }
  }

  withdraw() {
    if (!this.status) return;
    this.session.send({ type: "ring_decline", visit_id: this.status.visit_id });
  }

  join() {
    this.joined = true;
    $("join-status").textContent = t("call.joining");
    announce(t("call.joining"));
    this.session.setStream(this.stream, { receiveVideo: !this.audioOnly });
    this.session.join();
  }

  /** The call view, from the slot's start (until then a joined visitor stays in the waiting room). */
  showCall() {
    if (!$("call").hidden || this.finished) return;
    $("waiting").hidden = true;
    $("summary").hidden = true;
    $("call").hidden = false;
    $("join-status").textContent = "";
    this.tick();
    announce(t("call.state.connected"));
  }

  // ---------------------------------------------------------------- live call

  stateChanged(state) {
    const text = t(`call.state.${state}`);
    $("conn-status").textContent = text;
    const ownProblem = this.connectProblem && this.connectProblem !== "call.connect.kiosk";
    if ((state === "connected" && ownProblem) || state === "ended") this.showConnectProblem(null);
    if (state === "unreachable") $("join-status").textContent = text;
    if (state === "connected" && !this.session.started()) {
      // Joined early: connected, in the waiting room until the slot starts.
      $("join-status").textContent = t("call.waiting.ready");
      announce(t("call.waiting.ready"));
    } else if (state === "connected") {
      this.showCall();
    } else if (state === "reconnecting" && this.joined) {
      announce(text);
    } else if (state === "joining") {
      $("join-status").textContent = t("call.joining");
    }
  }

  // ---------------------------------------------------------------- media that cannot connect

  /** This side's media did not connect in time: "relay" (trying TURN) or "failed" (gave up). */
  connectTrouble(stage) {
    this.showConnectProblem(stage === "relay" ? "call.connect.relay" : "call.connect.failed",
      { tips: true, retry: stage === "failed" });
  }

  /** The server: the kiosk's media cannot connect (this side's own trouble comes from above). */
  otherCannotConnect(message) {
    if (message.role !== "kiosk" || this.finished) return;
    this.showConnectProblem("call.connect.kiosk");
  }

  showConnectProblem(key, { tips = false, retry = false } = {}) {
    this.connectProblem = key;
    $("connect-problem").hidden = !key;
    $("connect-problem-tips").hidden = !tips;
    $("connect-retry").hidden = !retry;
    if (!key) return;
    $("connect-problem-text").textContent = t(key);
    announce(t(key));
  }

  retryConnect() {
    this.showConnectProblem(null);
    this.join();
  }

  remoteStream(stream) {
    const video = $("remote-video");
    if (video.srcObject !== stream) video.srcObject = stream;
    video.play().catch(() => {});
    this.updatePlaceholder();
  }

  updatePlaceholder() {
    const stream = $("remote-video").srcObject;
    const hasVideo = Boolean(stream && stream.getVideoTracks().length) && !this.audioOnly;
    $("remote-video").hidden = !hasVideo;
    $("remote-placeholder").hidden = hasVideo && !this.otherGone;
    $("remote-placeholder").textContent = this.otherGone ? t("call.remote.gone")
      : this.audioOnly ? t("call.remote.audio_only") : t("call.remote.waiting");
  }

  participant(message) {
    if (message.role === "visitor") return;
    if (message.state === "connected" && this.connectProblem === "call.connect.kiosk") {
      this.showConnectProblem(null);
    }
    this.otherGone = message.state === "disconnected";
    if (this.otherGone) announce(t("call.remote.gone"));
    this.updatePlaceholder();
  }

  warning(secondsLeft) {
    const minutes = Math.max(1, Math.round(secondsLeft / 60));
    const box = $("call-alert");
    box.textContent = t("call.warning.left", { count: minutes });
    box.hidden = false;
  }

  toggleMute(button) {
    const muted = button.getAttribute("aria-pressed") !== "true";
    this.session.setMuted(muted);
    button.setAttribute("aria-pressed", String(muted));
    button.textContent = t(muted ? "call.unmute" : "call.mute");
    announce(t(muted ? "call.muted" : "call.unmuted"));
  }

  toggleCamera(button) {
    const off = button.getAttribute("aria-pressed") !== "true";
    this.session.setCamera(!off);
    button.setAttribute("aria-pressed", String(off));
    button.textContent = t(off ? "call.camera_on" : "call.camera_off");
    announce(t(off ? "call.camera_is_off" : "call.camera_is_on"));
  }

  /** Audio only: no video either way (a new peer connection without a video section). */
  setAudioOnly(on) {
    this.audioOnly = on;
    for (const track of this.stream?.getVideoTracks() || []) {
      if (on) {
        this.stream.removeTrack(track);
        track.stop();
      }
    }
    $("poor-banner").hidden = true;
    if (on) {
      this.session.setStream(this.stream, { receiveVideo: false });
      $("self-video").hidden = true;
      announce(t("call.audio_only_on"));
      this.syncButtons();
      this.updatePlaceholder();
      return;
    }
    // Back to video: ask for the camera again, then rejoin with it.
    this.openMedia({ video: true }).then(() => {
      announce(t("call.audio_only_off"));
      this.updatePlaceholder();
    });
  }

  syncButtons() {
    const button = $("audio-only-button");
    button.setAttribute("aria-pressed", String(this.audioOnly));
    const hasVideo = Boolean(this.stream?.getVideoTracks().length);
    $("camera-button").disabled = !hasVideo;
    $("mute-button").disabled = !this.stream?.getAudioTracks().length;
  }

  sendChat(event) {
    event.preventDefault();
    const input = $("chat-text");
    const text = input.value.trim();
    const errorBox = $("chat-error");
    errorBox.hidden = true;
    input.removeAttribute("aria-invalid");
    if (!text) return;
    if (!this.session.sendChat(text)) {
      errorBox.textContent = t("call.chat.failed");
      errorBox.hidden = false;
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", "chat-error");
      return;
    }
    input.value = "";
  }

  showChat(message) {
    if (message.id !== undefined) {
      if (this.chatIds.has(message.id)) return;
      this.chatIds.add(message.id);
    }
    const mine = message.from === "visitor";
    const who = mine ? t("call.chat.me") : (this.visit?.person_name || t("call.chat.them"));
    const at = message.at ? fmtTime(message.at) : "";
    const item = el("div", { class: mine ? "chat-mine" : "chat-theirs",
      dataset: { id: String(message.id ?? "") } },
      el("span", { class: "chat-who" }, `${who} `),
      el("span", { class: "chat-at" }, at),
      el("p", { class: "chat-text" }, message.text));
    // In id order, also when history arrives after a live message.
    const later = message.id === undefined ? null : [...$("chat-log").children]
      .find((li) => li.dataset.id && Number(li.dataset.id) > message.id);
    $("chat-log").insertBefore(item, later || null);
    const log = $("chat-log");
    log.scrollTop = log.scrollHeight;
  }

  leave() {
    this.joined = false;
    this.session.leave();
    announce(t("call.left"));
    this.showSummary({ left: true });
  }

  rejoin() {
    $("summary").hidden = true;
    $("waiting").hidden = false;
    this.join();
  }

  // ---------------------------------------------------------------- the end

  ended({ reason, message }) {
    if (this.finished) return;
    this.finished = true;
    $("ring-status").hidden = true;
    $("call-alert").hidden = true;
    clearInterval(this.tickTimer);
    const key = `call.ended.${reason}`;
    const known = t(key);
    const text = known !== key ? known : message || t("call.ended.other");
    this.showSummary({ left: false, reasonText: text });
    announce(text);
    this.stopMedia();
  }

  refused({ code, message }) {
    this.finished = true;
    clearInterval(this.tickTimer);
    const box = $("call-refused");
    box.textContent = codeText(code, message);
    box.hidden = false;
    $("waiting").hidden = true;
    $("call").hidden = true;
    this.stopMedia();
  }

  error({ code, message }) {
    if (code === "visit_not_open_yet") {
      $("join-status").textContent = t("call.error.visit_not_open_yet");
      return;
    }
    if (code === "rate_limited") return;
    $("join-status").textContent = codeText(code, message);
    announce(codeText(code, message));
  }

  async showSummary({ left, reasonText = "" }) {
    $("call").hidden = true;
    $("waiting").hidden = true;
    $("summary").hidden = false;
    $("rejoin-button").hidden = !left;
    $("summary-reason").textContent = left ? t("call.summary.left") : reasonText;
    const rebook = $("summary-rebook");
    rebook.replaceChildren();
    rebook.hidden = true;
    $("summary-no-time").hidden = true;
    $("summary-figures").hidden = false;
    $("summary-lost-sides").hidden = true;
    if (left) {
      // The visit goes on: this side's own figures so far.
      const local = this.session.figures();
      $("summary-connected").textContent = minutesText(local.connectedSeconds);
      $("summary-lost").textContent = minutesText(local.lostSeconds);
      $("summary-title").focus?.();
      return;
    }
    const final = await this.finalFacts();
    if (!final) {
      // No word from the server (e.g. it stopped): this side's own figures, no verdict.
      const local = this.session.figures();
      $("summary-connected").textContent = minutesText(local.connectedSeconds);
      $("summary-lost").textContent = minutesText(local.lostSeconds);
      if (!this.visit && local.lostSeconds >= 60) {
        rebook.append(t("call.summary.lost_signin") + " ",
          el("a", { href: "/signin?next=%2Fvisitor%2Fvisits" }, t("call.summary.signin")));
        rebook.hidden = false;
      }
      $("summary-title").focus?.();
      return;
    }
    this.renderFinal(final);
    $("summary-title").focus?.();
  }

  /**
   * The visit's end as the server recorded it: {state, connected, lost, sides, credit,
   * rebookedAs}, or null. Signed in: GET /api/visits/{id} once it shows the end state; by join
   * link: the last `visit_status` the socket gets after the end.
   */
  async finalFacts() {
    if (this.visit) {
      const deadline = Date.now() + FINAL_WAIT_MS;
      let fresh = null;
      while (Date.now() < deadline) {
        try {
          fresh = await api("GET", `/api/visits/${this.visit.id}`);
          if (END_STATES.has(fresh.state)) break;
        } catch (ignored) {
          fresh = null;
        }
        await new Promise((resolve) => setTimeout(resolve, FINAL_POLL_MS));
      }
      if (!fresh || !END_STATES.has(fresh.state)) return null;
      return { state: fresh.state, connected: fresh.connected_seconds, lost: fresh.lost_seconds,
        sides: { visitor: fresh.visitor_lost_seconds, kiosk: fresh.kiosk_lost_seconds },
        credit: fresh.credit_flag, rebookedAs: fresh.rebooked_as };
    }
    const status = await this.finalStatus;
    if (!status || !END_STATES.has(status.state)) return null;
    return { state: status.state, connected: status.connected_seconds, lost: status.lost_seconds,
      sides: { visitor: status.visitor_lost_seconds, kiosk: status.kiosk_lost_seconds },
      credit: status.credit_flag, rebookedAs: null };
  }

  /** One consistent verdict: the end state, the ledger's figures, and the credit it earned. */
  renderFinal({ state, connected, lost, sides, credit, rebookedAs }) {
    $("summary-reason").textContent = t(`call.ended.${state}`);
    const neverConnected = state === "failed" && !connected;
    $("summary-figures").hidden = neverConnected;
    $("summary-no-time").hidden = !neverConnected;
    $("summary-no-time").textContent = t("call.summary.no_time");
    $("summary-connected").textContent = minutesText(connected);
    $("summary-lost").textContent = minutesText(lost);
    // The server's ledger per side: which side's connection lost the time (to the second).
    const lostSides = $("summary-lost-sides");
    lostSides.hidden = !lost;
    lostSides.textContent = t("call.summary.lostSides", {
      visitor: fmtDuration(sides.visitor ?? 0), kiosk: fmtDuration(sides.kiosk ?? 0) });
    const rebook = $("summary-rebook");
    if (!credit) return;
    const why = state === "failed" ? t("call.summary.credit_failed")
      : lost > 0 ? t("call.summary.credit_lost", { lost: minutesText(lost) })
        : t("call.summary.credit_other");
    rebook.append(why + " ");
    if (rebookedAs) {
      rebook.append(t("call.summary.rebooked"));
    } else if (this.visit) {
      rebook.append(el("a", { href: `/visitor/book?rebook=${this.visit.id}` },
        t("call.summary.rebook")));
    } else {
      rebook.append(el("a", { href: "/signin?next=%2Fvisitor%2Fvisits" },
        t("call.summary.signin_rebook")));
    }
    rebook.hidden = false;
  }

  close() {
    clearInterval(this.tickTimer);
    this.session?.close();
    this.stopMedia();
  }
}
