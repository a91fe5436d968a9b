// Visit now on the visitor's home page:
// - a "Visit now" button for each approved person while the facility allows it and a kiosk of
//   their unit is free for a whole visit (GET/POST /api/persons/{id}/visit-now); pressing it
//   rings the kiosk and opens the call page, which joins once the resident answers;
// - "Available for calls now": this page's socket (/ws/visitor on standby, docs/protocol.md)
//   lets the people the visitor may visit call it from their kiosk; a call rings here, with
//   sound, until it is accepted (the call page opens), declined, or it stops ringing.
import { announce, api, el, errorText, t, wsUrl } from "/assets/core.js";
import { ReconnectingSocket } from "/assets/socket.js";

const $ = (id) => document.getElementById(id);
const REFRESH_MS = 30000;

export function setUpVisitNow(approved) {
  const people = $("now-people");
  if (!people) return;
  const rows = approved.map((approval) => personRow(approval));
  people.replaceChildren(...rows.map((row) => row.item));
  const refresh = () => rows.forEach((row) => row.refresh());
  refresh();
  setInterval(refresh, REFRESH_MS);
  new Availability().start();
}

function personRow(approval) {
  const person = `${approval.person.first_name} ${approval.person.last_name}`;
  const status = el("span", { class: "muted" });
  const button = el("button", { type: "button", class: "primary", hidden: true },
    t("vnow.button", { person }));
  const item = el("li", {}, el("p", {}, el("strong", {}, person), ` · ${approval.facility_name} `),
    el("p", {}, button, " ", status));
  const path = `/api/persons/${approval.person.id}/visit-now`;
  const show = (now) => {
    button.hidden = !now.available;
    status.textContent = now.available
      ? t("vnow.free", { minutes: now.minutes })
      : reasonText(now.code, now.message);
  };
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const visit = await api("POST", path);
      announce(t("vnow.calling", { person }));
      location.href = `/visitor/call?visit_id=${visit.id}`;
    } catch (error) {
      button.disabled = false;
      status.textContent = error.code ? reasonText(error.code, errorText(error)) : errorText(error);
      button.hidden = true;
    }
  });
  return {
    item,
    refresh: async () => {
      try {
        show(await api("GET", path));
      } catch (error) {
        status.textContent = errorText(error);
      }
    },
  };
}

function reasonText(code, fallback) {
  const key = `vnow.code.${code}`;
  const known = t(key);
  return known === key ? fallback || t("vnow.code.other") : known;
}

/** The standby socket: "available now", and the rings of residents who call this visitor. */
class Availability {
  constructor() {
    this.box = $("now-available");
    this.ring = null;
    this.sound = null;
    this.socket = new ReconnectingSocket(wsUrl("/ws/visitor"), {
      onMessage: (message) => this.received(message),
      onState: (state) => {
        if (state === "open") this.sendAvailability();
        else if (state === "closed") this.status(t("vnow.available.reconnecting"));
      },
    });
  }

  start() {
    this.box.addEventListener("change", () => {
      // A click lets the page play sound later: the ring tone needs it.
      if (this.box.checked) this.sound = this.sound || new RingTone();
      this.sendAvailability();
    });
    $("ring-accept").addEventListener("click", () => this.answer(true));
    $("ring-decline").addEventListener("click", () => this.answer(false));
    this.socket.start();
  }

  sendAvailability() {
    if (!this.socket.send({ type: "availability", available: this.box.checked })) {
      this.status(t("vnow.available.reconnecting"));
    }
  }

  status(text) {
    $("now-available-status").textContent = text;
  }

  received(message) {
    if (message.type === "availability") {
      this.status(t(message.available ? "vnow.available.on" : "vnow.available.off"));
    } else if (message.type === "ring" && message.direction === "incoming") {
      this.ringing(message);
    } else if (message.type === "ring_ended" && message.visit_id === this.ring?.visit_id) {
      this.stopRinging();
      if (message.outcome === "accepted" && this.accepted) {
        location.href = `/visitor/call?visit_id=${message.visit_id}`;
      } else {
        this.status(t(`vnow.ring.ended.${message.outcome}`));
      }
    } else if (message.type === "ok" && message.ref === "ring_accept") {
      location.href = `/visitor/call?visit_id=${message.visit_id}`;
    } else if (message.type === "error" && message.ref?.startsWith("ring_")) {
      this.stopRinging();
      $("now-error").textContent = reasonText(message.code, message.message);
      $("now-error").hidden = false;
    }
  }

  ringing(message) {
    this.ring = message;
    this.accepted = false;
    $("ring-text").textContent = t("vnow.ring.text", {
      person: message.person_name, facility: message.facility_name, minutes: message.minutes });
    $("ring-box").hidden = false;
    $("now-error").hidden = true;
    this.sound?.start();
    announce(t("vnow.ring.title"));
    $("ring-accept").focus();
    const left = Date.parse(message.ring_until) - Date.parse(message.server_time);
    clearTimeout(this.timeout);
    this.timeout = setTimeout(() => this.stopRinging(), Math.max(0, left) + 2000);
  }

  stopRinging() {
    clearTimeout(this.timeout);
    $("ring-box").hidden = true;
    this.sound?.stop();
  }

  answer(accept) {
    if (!this.ring) return;
    this.accepted = accept;
    this.socket.send({ type: accept ? "ring_accept" : "ring_decline", visit_id: this.ring.visit_id });
    if (!accept) this.stopRinging();
  }
}

/** A phone-like ring tone (two tones, twice a second, every 3 s) made with WebAudio. */
class RingTone {
  constructor() {
    try {
      this.context = new AudioContext();
    } catch (ignored) {
      this.context = null;
    }
    this.timer = null;
  }

  start() {
    if (!this.context || this.timer) return;
    const burst = () => {
      const now = this.context.currentTime;
      for (const [offset, freq] of [[0, 440], [0.4, 480], [0.8, 440], [1.2, 480]]) {
        const tone = this.context.createOscillator();
        const gain = this.context.createGain();
        tone.frequency.value = freq;
        gain.gain.value = 0.2;
        tone.connect(gain).connect(this.context.destination);
        tone.start(now + offset);
        tone.stop(now + offset + 0.35);
      }
    };
    burst();
    this.timer = setInterval(burst, 3000);
    // "running": the tone is audible; "suspended": the browser holds sound back.
    document.body.dataset.ringTone = this.context.state;
    this.context.resume().then(() => {
      if (this.timer) document.body.dataset.ringTone = this.context.state;
    }, () => {});
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    delete document.body.dataset.ringTone;
  }
}
