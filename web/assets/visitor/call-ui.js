// The visitor's call screen (waiting room, live call, summary), shared by /visitor/call
// (signed in, ?visit_id=) and /join/<token> (the e-mailed link, no sign-in).
import { announce, api, el, fmtDateTime, fmtDuration, fmtTime, t } from "/assets/core.js";
import { CallSession, MicLevelMeter, getLocalMedia } from "/assets/call.js";

const $ = (id) => document.getElementById(id);
const ERROR_KEYS = new Set([
  "join_link_invalid", "join_link_expired", "join_link_revoked", "visit_not_active",
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
    const offset = this.session.clockOffsetMs;
    const toStart = (Date.parse(this.status.start_at) - (Date.now() + offset)) / 1000;
    $("visit-countdown").textContent = toStart > 0
      ? t("call.starts_in", { time: fmtDuration(toStart) })
      : t("call.started", { time: fmtDuration(left ?? 0) });
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

  // ---------------------------------------------------------------- live call

  stateChanged(state) {
    const text = t(`call.state.${state}`);
    $("conn-status").textContent = text;
    const ownProblem = this.connectProblem && this.connectProblem !== "call.connect.kiosk";
    if ((state === "connected" && ownProblem) || state === "ended") this.showConnectProblem(null);
    if (state === "unreachable") $("join-status").textContent = text;
    if (state === "connected") {
      $("waiting").hidden = true;
      $("summary").hidden = true;
      $("call").hidden = false;
      $("join-status").textContent = "";
      announce(text);
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
    const local = this.session.figures();
    let connected = local.connectedSeconds;
    let lost = local.lostSeconds;
    let credit = false;
    let rebookedAs = null;
    let sides = null;
    if (this.visit && !left) {
      // The server's figures count both sides; they are final shortly after the end.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      try {
        const fresh = await api("GET", `/api/visits/${this.visit.id}`);
        connected = fresh.connected_seconds;
        lost = fresh.lost_seconds;
        sides = { visitor: fresh.visitor_lost_seconds, kiosk: fresh.kiosk_lost_seconds };
        credit = fresh.credit_flag;
        rebookedAs = fresh.rebooked_as;
      } catch (ignored) {
        // Keep this side's own figures.
      }
    }
    $("summary-connected").textContent = minutesText(connected);
    $("summary-lost").textContent = minutesText(lost);
    // The server's ledger per side: which side's connection lost the time (to the second).
    const lostSides = $("summary-lost-sides");
    lostSides.hidden = !sides || !lost;
    if (sides) {
      lostSides.textContent = t("call.summary.lostSides", {
        visitor: fmtDuration(sides.visitor ?? 0),
        kiosk: fmtDuration(sides.kiosk ?? 0),
      });
    }
    const rebook = $("summary-rebook");
    rebook.replaceChildren();
    if (!left && credit && !rebookedAs && this.visit) {
      rebook.append(t("call.summary.credit") + " ",
        el("a", { href: `/visitor/book?rebook=${this.visit.id}` }, t("call.summary.rebook")));
      rebook.hidden = false;
    } else if (!left && !this.visit && lost >= 60) {
      rebook.append(t("call.summary.lost_signin") + " ",
        el("a", { href: "/signin?next=%2Fvisitor%2Fvisits" }, t("call.summary.signin")));
      rebook.hidden = false;
    } else {
      rebook.hidden = true;
    }
    $("summary-title").focus?.();
  }

  close() {
    clearInterval(this.tickTimer);
    this.session?.close();
    this.stopMedia();
  }
}
