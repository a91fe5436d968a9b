// Visit now at the kiosk (docs/protocol.md, "Visit now"):
// - a visitor's call rings here (with sound): the resident accepts (with their PIN where the
//   unit asks for it) or declines; answered, `visit_start` follows and the call starts;
// - a resident signs in with their booking number (and PIN), sees which of their visitors are
//   available now (first name and relationship only) and rings one; the call starts when the
//   visitor answers.

import { announce, el, t } from "/assets/core.js";

const KEYS = "1234567890ABCDEFGHIJKLMNOPQRSTUVWXYZ-";
const LIST_REFRESH_MS = 5000;
const ENDED_SHOW_MS = 6000;

const $ = (id) => document.getElementById(id);

export class KioskRinging {
  /**
   * `host`: {show(section), phase(), send(message), askPin(who, onPin), pinRefused(detail),
   * idle()}: the kiosk page's screens, socket and PIN pad.
   */
  constructor(host) {
    this.host = host;
    this.ring = null; // the ring message on screen
    this.bookingNumber = "";
    this.listTimer = null;
    this.tone = new KioskTone();
    $("call-someone").addEventListener("click", () => this.startSignIn());
    $("ring-accept").addEventListener("click", () => this.accept());
    $("ring-decline").addEventListener("click", () => this.decline());
    $("ring-hangup").addEventListener("click", () => this.decline());
    $("resident-next").addEventListener("click", () => this.signIn());
    $("resident-cancel").addEventListener("click", () => this.done());
    $("callees-done").addEventListener("click", () => this.done());
    $("resident-keys").replaceChildren(
      el("div", { class: "kb-row" }, [...KEYS].map((key) =>
        el("button", { type: "button", class: "kb-key", onclick: () => this.type(key) }, key))),
      el("div", { class: "kb-row" }, el("button", { type: "button", class: "kb-key kb-word",
        onclick: () => this.type(null) }, t("kiosk.kb.delete"))),
    );
  }

  /** A server message; true when it was Visit now's. */
  handle(type, message) {
    if (type === "ring") this.ringing(message);
    else if (type === "ring_ended") this.ringEnded(message);
    else if (type === "available_visitors") this.showCallees(message);
    else if (type === "error") return this.refused(message);
    else return false;
    return true;
  }

  // ---------------------------------------------------------------- rings

  ringing(message) {
    const phase = this.host.phase();
    if (!["idle", "ended", "resident", "callees", "ring"].includes(phase)) return;
    this.stopList();
    this.ring = message;
    const incoming = message.direction === "incoming";
    const caller = t("kiosk.now.caller", {
      visitor: message.visitor_first_name, relationship: message.relationship });
    $("ring-title").textContent = t(incoming ? "kiosk.now.incoming" : "kiosk.now.outgoing");
    $("ring-who").textContent = incoming
      ? t("kiosk.now.callingPerson", { caller, person: message.person_name })
      : t("kiosk.now.callingVisitor", { caller });
    $("ring-state").textContent = t("kiosk.now.minutes", { count: message.minutes });
    $("ring-error").hidden = true;
    $("ring-accept").hidden = !incoming;
    $("ring-decline").hidden = !incoming;
    $("ring-hangup").hidden = incoming;
    this.host.show("ring");
    if (incoming) this.tone.start();
    announce($("ring-who").textContent);
    // The server ends an unanswered ring at `ring_until`; should its `ring_ended` not come
    // (the ring was ended another way), stop ringing shortly after anyway.
    clearTimeout(this.ringTimer);
    const left = Date.parse(message.ring_until) - Date.parse(message.server_time);
    this.ringTimer = setTimeout(() => {
      if (this.ring?.visit_id === message.visit_id) {
        this.ringEnded({ visit_id: message.visit_id, outcome: "missed" });
      }
    }, Math.max(0, left) + 3000);
    (incoming ? $("ring-accept") : $("ring-hangup")).focus();
  }

  accept() {
    const ring = this.ring;
    if (!ring) return;
    this.tone.stop();
    if (ring.pin_required) {
      this.host.askPin($("ring-who").textContent, (pin) =>
        this.host.send({ type: "ring_accept", visit_id: ring.visit_id, pin }));
      return;
    }
    $("ring-state").textContent = t("kiosk.now.answering");
    this.host.send({ type: "ring_accept", visit_id: ring.visit_id });
  }

  decline() {
    if (!this.ring) return;
    this.tone.stop();
    this.host.send({ type: "ring_decline", visit_id: this.ring.visit_id });
  }

  ringEnded(message) {
    if (!this.ring || message.visit_id !== this.ring.visit_id) return;
    clearTimeout(this.ringTimer);
    this.tone.stop();
    this.ring = null;
    if (message.outcome === "accepted") {
      $("ring-state").textContent = t("kiosk.call.starting");
      return; // `visit_start` follows: the kiosk joins the call
    }
    $("ring-error").textContent = t(`kiosk.now.ended.${message.outcome}`);
    $("ring-error").hidden = false;
    for (const id of ["ring-accept", "ring-decline", "ring-hangup"]) $(id).hidden = true;
    if (this.host.phase() !== "ring") this.host.show("ring");
    setTimeout(() => {
      if (this.host.phase() === "ring" && !this.ring) this.host.idle();
    }, ENDED_SHOW_MS);
  }

  // ---------------------------------------------------------------- a resident calls

  startSignIn() {
    this.bookingNumber = "";
    $("resident-number").value = "";
    $("resident-error").hidden = true;
    this.host.show("resident");
    $("resident-number").focus();
  }

  type(key) {
    const input = $("resident-number");
    input.value = key === null ? input.value.slice(0, -1) : (input.value + key).slice(0, 64);
  }

  signIn(pin) {
    const number = $("resident-number").value.trim();
    if (!number) return;
    this.bookingNumber = number;
    const message = { type: "resident_sign_in", booking_number: number };
    if (pin) message.pin = pin;
    this.host.send(message);
  }

  showCallees(message) {
    if (!["resident", "callees", "pin"].includes(this.host.phase())) return;
    $("callees-who").textContent = t("kiosk.now.signedIn", { person: message.person_name });
    $("callees-error").hidden = true;
    $("callees-list").replaceChildren(...message.visitors.map((visitor) => el("li", {},
      el("button", { type: "button", class: "primary", onclick: () => this.call(visitor) },
        t("kiosk.now.callButton", { visitor: visitor.first_name,
          relationship: visitor.relationship })))));
    $("callees-empty").hidden = message.visitors.length > 0;
    if (this.host.phase() !== "callees") this.host.show("callees");
    clearTimeout(this.listTimer);
    this.listTimer = setTimeout(() => {
      if (this.host.phase() === "callees") this.host.send({ type: "get_available" });
    }, LIST_REFRESH_MS);
  }

  call(visitor) {
    this.stopList();
    this.host.send({ type: "ring_visitor", approval_id: visitor.approval_id });
  }

  stopList() {
    clearTimeout(this.listTimer);
    this.listTimer = null;
  }

  done() {
    this.stopList();
    this.host.send({ type: "resident_sign_out" });
    this.host.idle();
  }

  /** A refused Visit-now request; true when it was one. */
  refused(detail) {
    const ref = detail.ref || "";
    const known = t(`kiosk.now.error.${detail.code}`);
    const text = known === `kiosk.now.error.${detail.code}` ? detail.message : known;
    if (ref === "resident_sign_in") {
      if (detail.code === "pin_required") {
        this.host.askPin(this.bookingNumber, (pin) => this.signIn(pin));
      } else if (this.host.phase() === "pin") {
        this.host.pinRefused(detail);
      } else {
        $("resident-error").textContent = text;
        $("resident-error").hidden = false;
      }
      return true;
    }
    if (ref === "ring_accept" && this.host.phase() === "pin") {
      this.host.pinRefused(detail);
      return true;
    }
    if (["ring_visitor", "get_available"].includes(ref)) {
      if (detail.code === "resident_signed_out") {
        this.startSignIn();
        return true;
      }
      $("callees-error").textContent = text;
      $("callees-error").hidden = false;
      if (this.host.phase() !== "callees") this.host.show("callees");
      return true;
    }
    if (ref === "ring_accept" || ref === "ring_decline") {
      $("ring-error").textContent = text;
      $("ring-error").hidden = false;
      return true;
    }
    return false;
  }
}

/** The kiosk's ring tone (WebAudio; kiosks are set up to play sound without a touch). */
class KioskTone {
  start() {
    if (this.timer) return;
    try {
      this.context = this.context || new AudioContext();
      this.context.resume().catch(() => {});
    } catch (ignored) {
      return;
    }
    const burst = () => {
      const now = this.context.currentTime;
      for (const offset of [0, 0.4]) {
        const tone = this.context.createOscillator();
        const gain = this.context.createGain();
        tone.frequency.value = 480;
        gain.gain.value = 0.25;
        tone.connect(gain).connect(this.context.destination);
        tone.start(now + offset);
        tone.stop(now + offset + 0.3);
      }
    };
    burst();
    this.timer = setInterval(burst, 2500);
    document.body.dataset.ringTone = this.context.state; // "running" when audible
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    delete document.body.dataset.ringTone;
  }
}
