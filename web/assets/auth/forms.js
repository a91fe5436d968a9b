// Form helpers for the visitor and sign-in pages: per-field errors linked to their inputs
// (aria-invalid + aria-describedby), a form-level alert, and API validation details.
import { ApiError, errorText, homeFor } from "/assets/core.js";

/** Show `text` under the input named `name` (its error element is `<input id>-error`). */
export function setFieldError(input, text) {
  const box = document.getElementById(`${input.id}-error`);
  const hint = input.dataset.hint ? ` ${input.dataset.hint}` : "";
  if (text) {
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", `${input.id}-error${hint}`);
  } else {
    input.removeAttribute("aria-invalid");
    if (input.dataset.hint) input.setAttribute("aria-describedby", input.dataset.hint);
    else input.removeAttribute("aria-describedby");
  }
  if (box) {
    box.textContent = text || "";
    box.hidden = !text;
  }
}

export function clearErrors(form) {
  for (const input of form.querySelectorAll("input, select, textarea")) {
    if (input.id) setFieldError(input, "");
  }
  const alert = form.querySelector(".form-alert");
  if (alert) {
    alert.textContent = "";
    alert.hidden = true;
  }
}

/** The form-level alert (role=alert): a translated API error or a given text. */
export function showFormError(form, errorOrText) {
  const alert = form.querySelector(".form-alert");
  if (!alert) return;
  alert.textContent = typeof errorOrText === "string" ? errorOrText : errorText(errorOrText);
  alert.hidden = false;
}

/** Field names the server's validation details point at (body or query). */
export function invalidFields(error) {
  if (!(error instanceof ApiError) || !Array.isArray(error.details)) return [];
  return error.details
    .map((item) => (Array.isArray(item.loc) ? item.loc[item.loc.length - 1] : null))
    .filter((name) => typeof name === "string");
}

/** Focus the first invalid input, or the alert. */
export function focusFirstProblem(form) {
  const bad = form.querySelector("[aria-invalid=true]");
  if (bad) bad.focus();
}

/** Where to go after signing in: a same-site path from ?next=, else the role's home. */
export function nextPath(role) {
  const next = new URLSearchParams(location.search).get("next") || "";
  const safe = next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\");
  if (safe && !next.startsWith("/signin") && !next.startsWith("/mfa")) {
    // A visitor is not sent to staff pages, nor staff to visitor pages.
    const visitorPage = next.startsWith("/visitor/") || next.startsWith("/join/");
    if ((role === "visitor") === visitorPage || next === "/") return next;
  }
  return homeFor(role);
}
