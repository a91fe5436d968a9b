// An on-screen number pad for the person's PIN: big buttons, no keyboard needed. The digits
// typed are never shown, only how many there are.

import { el, t } from "/assets/core.js";

const MAX_DIGITS = 12;

export class PinPad {
  /** `onSubmit(pin)` is called with the digits when OK is pressed. */
  constructor(container, display, errorNode, onSubmit) {
    this.display = display;
    this.errorNode = errorNode;
    this.onSubmit = onSubmit;
    this.digits = "";
    const keys = ["1", "2", "3", "4", "5", "6", "7", "8", "9"].map((digit) => this.digitButton(digit));
    this.clearButton = el(
      "button",
      { type: "button", class: "pin-key word", onclick: () => this.erase() },
      t("kiosk.pin.delete"),
    );
    this.okButton = el(
      "button",
      { type: "button", class: "pin-key primary", disabled: true, onclick: () => this.submit() },
      t("kiosk.pin.ok"),
    );
    container.replaceChildren(...keys, this.clearButton, this.digitButton("0"), this.okButton);
    this.first = keys[0];
    this.render();
  }

  digitButton(digit) {
    return el(
      "button",
      { type: "button", class: "pin-key", onclick: () => this.press(digit) },
      digit,
    );
  }

  press(digit) {
    if (this.digits.length >= MAX_DIGITS) return;
    this.digits += digit;
    this.render();
  }

  erase() {
    this.digits = this.digits.slice(0, -1);
    this.render();
  }

  submit() {
    if (!this.digits) return;
    const pin = this.digits;
    this.digits = "";
    this.render();
    this.okButton.disabled = true;
    this.onSubmit(pin);
  }

  render() {
    const count = this.digits.length;
    this.display.textContent = count
      ? `${"●".repeat(count)} (${t("kiosk.pin.count", { count })})`
      : t("kiosk.pin.empty");
    this.okButton.disabled = count === 0;
  }

  reset(errorText = "") {
    this.digits = "";
    this.render();
    this.showError(errorText);
  }

  /** A refusal of the PIN from the server (wrong_pin, pin_locked, pin_not_set). */
  refused(code, message, details) {
    const key = `kiosk.pin.${code}`;
    const known = t(key);
    const tries = details?.tries_left;
    if (code === "wrong_pin" && Number.isInteger(tries)) {
      this.reset(`${known} ${t("kiosk.pin.triesLeft", { count: tries })}`);
    } else {
      this.reset(known === key ? message || t("error.generic") : known);
    }
  }

  showError(text) {
    this.errorNode.textContent = text;
    this.errorNode.hidden = !text;
  }

  focus() {
    this.first.focus();
  }
}
