// Two-step sign-in (TOTP): enrolment during sign-in (a pending login of stage "enrol") or
// while signed in, the recovery codes shown once, and new recovery codes later.
import { ApiError, announce, api, el, errorText, fmtDateTime, initPage, setSession, showError, t, useCsrf } from "/assets/core.js";
import { nextPath } from "/assets/auth/forms.js";

const STAFF = ["officer", "facility_admin", "agency_admin"];
const content = document.getElementById("mfa-content");
const params = new URLSearchParams(location.search);

const current = await initPage({ area: "auth", titleKey: "mfa.title" });
if (current && STAFF.includes(current.account.role)) {
  await showOwnFactor();
} else {
  await continuePendingSignIn();
}

async function continuePendingSignIn() {
  let pending = null;
  try {
    pending = await api("GET", "/api/auth/mfa");
  } catch (error) {
    if (!(error instanceof ApiError) || ![401, 403].includes(error.status)) throw error;
  }
  if (!pending || pending.stage !== "enrol") {
    location.replace(`/signin${location.search}`);
    return;
  }
  useCsrf(pending.csrf_token);
  content.replaceChildren(el("p", {}, t("mfa.enrol_required")));
  try {
    const enrolment = await api("POST", "/api/auth/mfa/enrolment");
    showEnrolment(enrolment, "/api/auth/mfa/enrolment/confirm");
  } catch (error) {
    content.append(alertBox(error));
  }
}

async function showOwnFactor() {
  const status = await api("GET", "/api/account/mfa");
  if (!status.enrolled) {
    content.replaceChildren(
      el("p", {}, t(status.required ? "mfa.enrol_required" : "mfa.enrol_optional")),
      passwordForm(),
    );
    return;
  }
  const parts = [
    el("p", {}, el("span", { class: "badge ok" }, t("mfa.on")), " ", t("mfa.on_since", { when: fmtDateTime(status.enrolled_at) })),
    el("p", { id: "mfa-codes-left" }, t("mfa.codes_left", { count: status.recovery_codes_left })),
  ];
  if (params.get("used_recovery")) {
    parts.unshift(el("p", { class: "notice" }, t("mfa.used_recovery")));
    parts.push(el("p", {}, el("a", { href: nextPath(current.account.role) }, t("mfa.continue"))));
  }
  content.replaceChildren(...parts, regenerateForm());
}

/** Signed in, not enrolled: the current password first (re-authentication). */
function passwordForm() {
  const input = el("input", { id: "mfa-password", type: "password", autocomplete: "current-password", required: true });
  const error = el("p", { id: "mfa-password-error", class: "error", role: "alert", hidden: true });
  const form = el(
    "form",
    { novalidate: true },
    el("label", { for: "mfa-password" }, t("mfa.password")),
    input,
    error,
    el("p", {}, el("button", { type: "submit", class: "primary" }, t("mfa.start"))),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, null, input);
    try {
      const enrolment = await api("POST", "/api/account/mfa/enrolment", { password: input.value });
      showEnrolment(enrolment, "/api/account/mfa/enrolment/confirm");
    } catch (problem) {
      showError(error, problem, input);
      if (problem instanceof ApiError && problem.code === "bad_credentials") error.textContent = t("mfa.wrong_password");
      input.focus();
    }
  });
  return form;
}

/** The QR code and the secret, then the first code to confirm. */
function showEnrolment(enrolment, confirmPath) {
  const grouped = enrolment.secret.match(/.{1,4}/g).join(" ");
  const input = el("input", {
    id: "mfa-first-code",
    type: "text",
    inputmode: "numeric",
    autocomplete: "one-time-code",
    maxlength: 6,
    required: true,
  });
  const error = el("p", { id: "mfa-first-code-error", class: "error", role: "alert", hidden: true });
  const form = el(
    "form",
    { novalidate: true },
    el("label", { for: "mfa-first-code" }, t("mfa.first_code")),
    input,
    error,
    el("p", {}, el("button", { type: "submit", class: "primary" }, t("mfa.confirm"))),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, null, input);
    const code = input.value.replace(/\s/g, "");
    if (!/^[0-9]{6}$/.test(code)) {
      showError(error, new Error("format"), input);
      error.textContent = t("mfa.six_digits");
      input.focus();
      return;
    }
    try {
      const done = await api("POST", confirmPath, { code });
      if (done.session) setSession(done.session);
      showRecoveryCodes(done.recovery_codes, done.session?.account?.role || current?.account?.role);
    } catch (problem) {
      showError(error, problem, input);
      if (problem instanceof ApiError && problem.code === "bad_code") error.textContent = t("mfa.wrong");
      input.select();
      input.focus();
    }
  });
  const heading = el("h2", { tabindex: "-1" }, t("mfa.scan_title"));
  content.replaceChildren(
    heading,
    el("ol", {}, el("li", {}, t("mfa.step_app")), el("li", {}, t("mfa.step_scan")), el("li", {}, t("mfa.step_code"))),
    el("p", {}, el("img", { class: "mfa-qr", src: enrolment.qr_svg, alt: t("mfa.qr_alt"), width: 240, height: 240 })),
    el("p", {}, t("mfa.manual"), " ", el("code", { class: "mfa-secret", id: "mfa-secret" }, grouped)),
    form,
  );
  heading.focus();
}

/** Shown once: the recovery codes (only their hashes are kept on the server). */
function showRecoveryCodes(codes, role) {
  const heading = el("h2", { tabindex: "-1" }, t("mfa.codes_title"));
  content.replaceChildren(
    heading,
    el("p", { class: "notice" }, t("mfa.codes_lead")),
    el("ol", { class: "mfa-codes", id: "mfa-codes" }, codes.map((code) => el("li", {}, el("code", {}, code)))),
    el("p", {}, el("a", { href: nextPath(role), class: "button primary" }, t("mfa.continue"))),
  );
  heading.focus();
  announce(t("mfa.enrolled"));
}

/** New recovery codes: the password and a current code (re-authentication). */
function regenerateForm() {
  const password = el("input", { id: "mfa-regen-password", type: "password", autocomplete: "current-password", required: true });
  const code = el("input", { id: "mfa-regen-code", type: "text", inputmode: "numeric", autocomplete: "one-time-code", maxlength: 6, required: true });
  const error = el("p", { id: "mfa-regen-error", class: "error", role: "alert", hidden: true });
  const form = el(
    "form",
    { novalidate: true, "aria-labelledby": "mfa-regen-title" },
    el("h2", { id: "mfa-regen-title" }, t("mfa.regen_title")),
    el("p", { class: "muted" }, t("mfa.regen_lead")),
    el("label", { for: "mfa-regen-password" }, t("mfa.password")),
    password,
    el("label", { for: "mfa-regen-code" }, t("mfa.current_code")),
    code,
    error,
    el("p", {}, el("button", { type: "submit", class: "primary" }, t("mfa.regen"))),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, null, code);
    try {
      const done = await api("POST", "/api/account/mfa/recovery-codes", {
        password: password.value,
        code: code.value.replace(/\s/g, ""),
      });
      showRecoveryCodes(done.recovery_codes, current.account.role);
    } catch (problem) {
      showError(error, problem, code);
      if (problem instanceof ApiError && problem.code === "bad_code") error.textContent = t("mfa.wrong");
      if (problem instanceof ApiError && problem.code === "bad_credentials") error.textContent = t("mfa.wrong_password");
    }
  });
  return form;
}

function alertBox(error) {
  const box = el("p", { class: "error", role: "alert" });
  box.textContent = errorText(error);
  return box;
}
