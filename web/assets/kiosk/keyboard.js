// An on-screen keyboard for the in-call chat: the person in custody answers a deaf or
// hard-of-hearing visitor by touch (kiosks have no physical keyboard). Letters for English and
// Spanish, digits, space, delete and send; the text typed so far is shown in a labelled box.

import { el, t } from "/assets/core.js";

const MAX_CHARS = 300;
const ROWS = [
  "1234567890",
  "QWERTYUIOP",
  "ASDFGHJKLÑ",
  "ZXCVBNM,.?",
];
const ACCENTS = "ÁÉÍÓÚ¿¡";

export class ChatKeyboard {
  /** `onSend(text)` returns true when the message was handed to the socket. */
  constructor(container, onSend) {
    this.onSend = onSend;
    this.text = "";
    this.output = el("output", { id: "kb-text", class: "kb-text", "aria-live": "off" });
    const label = el("label", { for: "kb-text", class: "kb-label" }, t("kiosk.kb.typed"));
    const key = (char) =>
      el("button", { type: "button", class: "kb-key", onclick: () => this.type(char) }, char);
    const rows = [...ROWS, ACCENTS].map((row) =>
      el("div", { class: "kb-row" }, [...row].map(key)),
    );
    this.sendButton = el(
      "button",
      { type: "button", class: "kb-key kb-word primary", disabled: true, onclick: () => this.send() },
      t("kiosk.kb.send"),
    );
    const controls = el(
      "div",
      { class: "kb-row" },
      el("button", { type: "button", class: "kb-key kb-space", onclick: () => this.type(" ") },
        t("kiosk.kb.space")),
      el("button", { type: "button", class: "kb-key kb-word", onclick: () => this.erase() },
        t("kiosk.kb.delete")),
      this.sendButton,
    );
    container.replaceChildren(
      label,
      this.output,
      el("div", { role: "group", "aria-label": t("kiosk.kb.keys"), class: "kb-keys" }, rows, controls),
    );
    this.render();
  }

  type(char) {
    if (this.text.length >= MAX_CHARS) return;
    // Letters after the first of a sentence are lower case: reads like normal writing.
    const startOfSentence = !this.text.trim() || /[.?!¿¡]\s*$/.test(this.text);
    this.text += startOfSentence ? char : char.toLowerCase();
    this.render();
  }

  erase() {
    this.text = this.text.slice(0, -1);
    this.render();
  }

  send() {
    const text = this.text.trim();
    if (!text) return;
    if (this.onSend(text)) {
      this.text = "";
      this.render();
    }
  }

  clear() {
    this.text = "";
    this.render();
  }

  render() {
    this.output.textContent = this.text;
    this.sendButton.disabled = !this.text.trim();
  }
}
