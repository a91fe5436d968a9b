// The housing-unit kiosk: today's schedule while idle, joins by itself shortly before a slot
// starts (after the person's PIN where the facility asks for it) and waits in the waiting room
// (the start time and a countdown) until `visit_start`, shows the visitor, the time left, the
// warnings and the chat, and recovers by itself from network loss or a reload. Visit now
// (./ringing.js): visitors' calls ring here, and a resident may call an available visitor.

import { announce, el, fmtDuration, fmtTime, initPage, t, visitPhase } from "/assets/core.js";
import { CallSession, getLocalMedia } from "/assets/call.js";
import { savedToken, takeTokenFromFragment } from "./token.js";
import { PinPad } from "./pin.js";
import { ChatKeyboard } from "./keyboard.js";
import { KioskRinging } from "./ringing.js";

// What the person in custody can answer with a touch (chat for deaf and hard-of-hearing visitors).
const QUICK_REPLIES = [
  "kiosk.reply.yes", "kiosk.reply.no", "kiosk.reply.wait", "kiosk.reply.cantHear",
  "kiosk.reply.cantSee", "kiosk.reply.thanks", "kiosk.reply.love", "kiosk.reply.bye",
];
const ENDED_SCREEN_MS = 10000;
const SCHEDULE_REFRESH_MS = 60000;
const SECTIONS = ["needs-setup", "idle", "pin", "call", "ended", "ring", "resident", "callees"];
const RUNNING = new Set(["ready", "live"]);
const ACTIVE = new Set(["scheduled", "ready", "live"]);
// The kiosk joins this long before a slot starts: both sides' connections are up at the start,
// so the call shows both at once. Until the start nothing flows (the server's waiting room).
const JOIN_EARLY_MS = 60000;

const $ = (id) => document.getElementById(id);

const kiosk = {
  session: null,
  schedule: null,
  phase: "idle",
  visit: null, // {id, endAt}
  stream: null,
  endedTimer: null,
  pinPad: null,
  pinAction: null, // Visit now: what the PIN pad's digits are for (else the visit's pin_confirm)
  ringing: null,
  connection: "connecting",
  visitorHere: false,
  connectProblem: null, // the i18n key shown in #connect-problem
  waiting: false, // in the waiting room: joined before the slot's start
  startTimer: null,
  endedIds: new Set(), // visits that ended here: a stale schedule must not join them again
};

function show(section) {
  for (const id of SECTIONS) $(id).hidden = id !== section;
  kiosk.phase = section;
}

function timeZone() {
  return kiosk.schedule?.timezone;
}

/** The server's time now (ms): the schedule's times are the server's. */
function serverNow() {
  return Date.now() + (kiosk.session?.clockOffsetMs || 0);
}

function scheduledVisit(id) {
  return kiosk.schedule?.visits.find((visit) => visit.id === id) || null;
}

function whoText(visit) {
  if (!visit) return "";
  return t("kiosk.call.with", { visitor: visit.visitor_first_name, person: visit.person_name });
}

// ------------------------------------------------------------------ idle screen

function renderSchedule() {
  const schedule = kiosk.schedule;
  if (!schedule) return;
  $("kiosk-name").textContent = schedule.kiosk_name;
  const list = $("schedule");
  const now = Date.now();
  const upcoming = schedule.visits.filter((visit) => Date.parse(visit.end_utc) > now);
  list.replaceChildren(
    ...upcoming.map((visit) => {
      const running = RUNNING.has(visit.state) && Date.parse(visit.start_utc) <= now;
      return el(
        "li",
        { class: running ? "now" : "" },
        el(
          "span",
          { class: "slot-time" },
          `${fmtTime(visit.start_utc, schedule.timezone)} – ${fmtTime(visit.end_utc, schedule.timezone)}`,
        ),
        el("span", { class: "slot-who" }, whoText(visit)),
        visit.minors_count
          ? el("span", { class: "slot-extra" }, t("kiosk.minors", { count: visit.minors_count }))
          : null,
        visit.privileged ? el("span", { class: "badge" }, t("kiosk.privileged")) : null,
        running ? el("span", { class: "badge ok" }, t("kiosk.now")) : null,
      );
    }),
  );
  $("schedule-empty").hidden = upcoming.length > 0;
}

function tick() {
  $("clock").textContent = fmtTime(new Date().toISOString(), timeZone());
  if (kiosk.phase === "idle") joinSoon();
  if (kiosk.phase === "call" && kiosk.session) {
    const left = kiosk.session.secondsLeft();
    $("time-left").textContent = left === null ? "--:--" : fmtDuration(left);
    showWaiting();
  }
}

/** Idle, with a slot starting within JOIN_EARLY_MS: join now and wait for its start. */
function joinSoon() {
  const now = serverNow();
  const next = kiosk.schedule?.visits.find(
    (visit) =>
      ACTIVE.has(visit.state) &&
      !kiosk.endedIds.has(visit.id) &&
      Date.parse(visit.start_utc) - now <= JOIN_EARLY_MS &&
      Date.parse(visit.end_utc) > now,
  );
  if (next) {
    startVisit(next.id, {
      startAt: next.start_utc, endAt: next.end_utc, pinRequired: next.pin_required,
    });
  }
}

/** Before the slot starts: the start time and a countdown (the same words as everywhere). */
function showWaiting() {
  const session = kiosk.session;
  const visit = kiosk.visit;
  const waiting = Boolean(visit?.startAt) && !session.started();
  $("call-wait").hidden = !waiting;
  if (kiosk.waiting !== waiting) {
    if (kiosk.waiting && !waiting) announce(t("kiosk.call.starting"));
    kiosk.waiting = waiting;
    setConnection(kiosk.connection);
  }
  if (!waiting) return;
  const toStart = session.secondsToStart();
  if (toStart !== null && toStart < 1.5 && !kiosk.startTimer) {
    // Leave the waiting screen at the start itself, not at the next tick.
    kiosk.startTimer = setTimeout(() => {
      kiosk.startTimer = null;
      if (kiosk.phase === "call") showWaiting();
    }, toStart * 1000 + 20);
  }
  $("call-starts-at").textContent = t("kiosk.call.startsAt", {
    time: fmtTime(visit.startAt, timeZone()) });
  $("call-countdown").textContent = visitPhase("ready", visit.startAt, visit.endAt,
    session.serverNow()) || "";
}

function setConnection(state) {
  kiosk.connection = state;
  if (state === "connected" && kiosk.connectProblem !== "kiosk.connect.visitor") {
    showConnectProblem(null);
  }
  const idle = $("connection");
  idle.dataset.state = state;
  idle.textContent = t(`kiosk.state.${state}`);
  const call = $("call-state");
  call.dataset.state = state;
  const beforeStart = kiosk.session !== null && !kiosk.session.started() &&
    Boolean(kiosk.visit?.startAt);
  const waiting = state === "connected" && !kiosk.visitorHere;
  call.textContent = t(state === "connected" && beforeStart ? "kiosk.call.readyForStart"
    : waiting ? "kiosk.call.waitingVisitor" : `kiosk.state.${state}`);
}

// ------------------------------------------------------------------ joining a visit

/**
 * The slot of `visitId` starts soon, started, or is running after a reload: confirm the PIN,
 * or join (before the start, the call waits in the waiting room).
 */
function startVisit(visitId, { startAt, endAt, pinRequired }) {
  if (kiosk.visit?.id === visitId && (kiosk.phase === "call" || kiosk.phase === "pin")) return;
  clearTimeout(kiosk.endedTimer);
  kiosk.visit = { id: visitId, startAt, endAt };
  if (pinRequired) askPin();
  else joinCall();
}

function askPin(errorText = "") {
  kiosk.pinAction = null;
  const visit = scheduledVisit(kiosk.visit.id);
  $("pin-who").textContent = whoText(visit);
  show("pin");
  kiosk.pinPad.reset(errorText);
  kiosk.pinPad.focus();
}

/** Open or close the on-screen chat keyboard (closing drops what was typed). */
function showKeyboard(open) {
  $("chat-keyboard").hidden = !open;
  $("kb-toggle").setAttribute("aria-expanded", String(open));
  $("kb-toggle").textContent = t(open ? "kiosk.kb.close" : "kiosk.kb.open");
  if (!open) kiosk.keyboard?.clear();
}

async function joinCall() {
  const visitId = kiosk.visit.id;
  $("call-title").textContent = whoText(scheduledVisit(visitId)) || t("kiosk.call.title");
  $("warning").hidden = true;
  $("chat").replaceChildren();
  // Touch-only quick replies: a deaf or hard-of-hearing visitor can be answered without a keyboard.
  $("chat-box").hidden = false;
  showKeyboard(false);
  show("call");
  if (!kiosk.stream) {
    const { stream, error } = await getLocalMedia();
    if (kiosk.visit?.id !== visitId) {
      stream?.getTracks().forEach((track) => track.stop());
      return;
    }
    kiosk.stream = stream;
    if (error) showWarning(t("kiosk.call.noCamera"));
  }
  $("self-video").srcObject = kiosk.stream;
  kiosk.session.setStream(kiosk.stream);
  kiosk.session.join(visitId, { startAt: kiosk.visit.startAt, endAt: kiosk.visit.endAt });
  showWaiting();
  setConnection(kiosk.connection);
  announce(t(kiosk.session.started() ? "kiosk.call.starting" : "kiosk.call.waitingRoom"));
}

function playRemote() {
  const video = $("remote-video");
  video.muted = false;
  video.play().catch(() => {
    // The browser blocks sound without a touch: play muted and offer a button.
    video.muted = true;
    video.play().catch(() => {});
    $("sound-on").hidden = false;
  });
}

/** What keeps the media from connecting, in words; `retry` offers "Try again". */
function showConnectProblem(key, { retry = false } = {}) {
  kiosk.connectProblem = key;
  $("connect-problem").hidden = !key;
  $("connect-retry").hidden = !retry;
  if (!key) return;
  $("connect-problem-text").textContent = t(key);
  announce(t(key));
}

function showWarning(text) {
  const node = $("warning");
  node.textContent = text;
  node.hidden = false;
}

function stopLocalMedia() {
  kiosk.stream?.getTracks().forEach((track) => track.stop());
  kiosk.stream = null;
  $("self-video").srcObject = null;
  $("remote-video").srcObject = null;
}

function visitEnded(detail) {
  showConnectProblem(null);
  stopLocalMedia();
  if (kiosk.visit) kiosk.endedIds.add(kiosk.visit.id);
  kiosk.visitorHere = false;
  kiosk.visit = null;
  const key = `kiosk.ended.${detail.reason}`;
  const known = t(key);
  $("ended-message").textContent = known === key ? detail.message || "" : known;
  show("ended");
  announce(t("kiosk.ended.title"));
  clearTimeout(kiosk.endedTimer);
  kiosk.endedTimer = setTimeout(backToIdle, ENDED_SCREEN_MS);
}

function backToIdle() {
  kiosk.pinAction = null;
  show("idle");
  kiosk.session?.send({ type: "get_schedule" });
}

// ------------------------------------------------------------------ server events

function onSchedule(message) {
  kiosk.schedule = message;
  renderSchedule();
  if (kiosk.phase !== "idle") return;
  // After a reload or a lost connection: rejoin the visit that is running now. A PIN given
  // before still holds on the server; if it does not, the offer is refused with pin_required.
  const now = Date.now();
  const running = message.visits.find(
    (visit) =>
      RUNNING.has(visit.state) &&
      Date.parse(visit.start_utc) <= now + 5000 &&
      Date.parse(visit.end_utc) > now,
  );
  if (running) {
    startVisit(running.id, {
      startAt: running.start_utc, endAt: running.end_utc, pinRequired: false,
    });
  }
}

function onError(detail) {
  if (kiosk.ringing?.handle("error", detail)) return;
  if (!kiosk.visit) return;
  if (detail.ref === "offer" && detail.code === "pin_required") {
    askPin();
  } else if (detail.ref === "pin_confirm") {
    if (detail.code === "pin_not_required") joinCall();
    else if (detail.code === "visit_not_active") visitEnded({ reason: "closed", message: "" });
    else kiosk.pinPad.refused(detail.code, detail.message, detail.details);
  } else if (detail.ref === "offer" && kiosk.phase === "call") {
    showWarning(t("kiosk.call.joinFailed"));
  }
}

function needsSetup(reasonKey) {
  show("needs-setup");
  $("setup-reason").textContent = t(reasonKey);
}

function connect(token) {
  const session = new CallSession({ endpoint: "kiosk", token, stayOpen: true });
  kiosk.session = session;
  session.addEventListener("state", (event) => setConnection(event.detail.state));
  session.addEventListener("schedule", (event) => onSchedule(event.detail));
  session.addEventListener("visit_start", (event) => {
    const message = event.detail;
    session.send({ type: "get_schedule" });
    startVisit(message.visit_id, {
      startAt: message.start_at, endAt: message.end_at, pinRequired: message.pin_required,
    });
  });
  session.addEventListener("participant", (event) => {
    if (event.detail.role !== "visitor") return;
    kiosk.visitorHere = event.detail.state === "connected";
    if (kiosk.visitorHere && kiosk.connectProblem === "kiosk.connect.visitor") {
      showConnectProblem(null);
    }
    setConnection(kiosk.connection);
  });
  // This kiosk's media did not connect in time: trying TURN, or given up (an officer helps).
  session.addEventListener("connect_trouble", (event) => {
    if (kiosk.phase !== "call") return;
    const failed = event.detail.stage === "failed";
    showConnectProblem(failed ? "kiosk.connect.failed" : "kiosk.connect.relay", { retry: failed });
  });
  // The server: the visitor's media cannot connect (their network); they were told what to try.
  session.addEventListener("media_not_connected", (event) => {
    if (event.detail.role === "visitor" && kiosk.phase === "call") {
      showConnectProblem("kiosk.connect.visitor");
    }
  });
  session.addEventListener("pin_accepted", () => {
    if (kiosk.phase === "pin") joinCall();
  });
  session.addEventListener("remote_stream", (event) => {
    const video = $("remote-video");
    if (video.srcObject !== event.detail.stream) video.srcObject = event.detail.stream;
    playRemote();
  });
  session.addEventListener("warning", (event) => {
    const minutes = Math.max(1, Math.round(event.detail.seconds_left / 60));
    const text = t("kiosk.call.warning", { count: minutes });
    showWarning(text);
    announce(text);
  });
  session.addEventListener("chat", (event) => {
    const message = event.detail;
    const visit = scheduledVisit(message.visit_id ?? kiosk.visit?.id);
    const from =
      message.from === "kiosk" ? t("kiosk.chat.you") : visit?.visitor_first_name || t("kiosk.chat.visitor");
    $("chat").append(
      el("li", {}, el("span", { class: "chat-from" }, `${from}: `), message.text),
    );
    $("chat-box").hidden = false;
  });
  kiosk.keyboard = new ChatKeyboard($("chat-keyboard"), (text) => session.sendChat(text));
  $("kb-toggle").addEventListener("click", () => showKeyboard($("chat-keyboard").hidden));
  $("quick-replies").replaceChildren(
    ...QUICK_REPLIES.map((key) =>
      el("button", { type: "button", class: "quick-reply", onclick: () => session.sendChat(t(key)) }, t(key)),
    ),
  );
  kiosk.ringing = new KioskRinging({
    show,
    phase: () => kiosk.phase,
    send: (message) => session.send(message),
    askPin: (who, onPin) => {
      kiosk.pinAction = onPin;
      $("pin-who").textContent = who;
      show("pin");
      kiosk.pinPad.reset();
      kiosk.pinPad.focus();
    },
    pinRefused: (detail) => kiosk.pinPad.refused(detail.code, detail.message, detail.details),
    idle: backToIdle,
  });
  for (const type of ["ring", "ring_ended", "available_visitors"]) {
    session.addEventListener(type, (event) => kiosk.ringing.handle(type, event.detail));
  }
  session.addEventListener("ended", (event) => visitEnded(event.detail));
  session.addEventListener("error", (event) => onError(event.detail));
  session.addEventListener("refused", () => needsSetup("kiosk.setup.refused"));
  session.start();
}

async function main() {
  await initPage({ area: "kiosk", titleKey: "kiosk.title", needsSession: false });
  const token = takeTokenFromFragment() || savedToken();
  kiosk.pinPad = new PinPad($("pin-pad"), $("pin-entered"), $("pin-error"), (pin) => {
    if (kiosk.pinAction) kiosk.pinAction(pin);
    else kiosk.session.send({ type: "pin_confirm", visit_id: kiosk.visit.id, pin });
  });
  $("connect-retry").addEventListener("click", () => {
    if (!kiosk.visit) return;
    showConnectProblem(null);
    kiosk.session.join(kiosk.visit.id, { endAt: kiosk.visit.endAt });
  });
  $("sound-on").addEventListener("click", () => {
    const video = $("remote-video");
    video.muted = false;
    video.play().catch(() => {});
    $("sound-on").hidden = true;
  });
  setConnection("connecting");
  tick();
  setInterval(tick, 1000);
  setInterval(() => {
    if (kiosk.phase === "idle") {
      kiosk.session?.send({ type: "get_schedule" });
      renderSchedule();
    }
  }, SCHEDULE_REFRESH_MS);
  window.addEventListener("hashchange", () => {
    if (takeTokenFromFragment()) location.reload();
  });
  // Staff may leave the kiosk page only on purpose: the brand link keeps it here.
  document.querySelector(".vv-brand")?.setAttribute("href", "/kiosk/");
  if (!token) {
    needsSetup("kiosk.setup.ask");
    return;
  }
  show("idle");
  connect(token);
}

main();
