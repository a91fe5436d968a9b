import { ApiError, api, errorText, homeFor, initPage, setSession, showError, t, useCsrf } from "/assets/core.js";
import { nextPath } from "/assets/auth/forms.js";

function lockedText(error) {
  const until = Date.parse(error.details?.locked_until || "");
  if (Number.isNaN(until)) return t("signin.locked_unknown");
  const minutes = Math.max(1, Math.ceil((until - Date.now()) / 60000));
  return t("signin.locked", { minutes });
}

const current = await initPage({ area: "auth", titleKey: "signin.title" });
if (current && !new URLSearchParams(location.search).get("next")) {
  location.replace(homeFor(current.account.role));
}

const form = document.getElementById("signin-form");
const email = document.getElementById("signin-email");
const password = document.getElementById("signin-password");
const errorBox = document.getElementById("signin-error");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  showError(errorBox, null, email);
  showError(errorBox, null, password);
  if (!email.value.trim() || !password.value) {
    const missing = email.value.trim() ? password : email;
    showError(errorBox, new Error("missing"), missing);
    errorBox.textContent = t("signin.missing");
    missing.focus();
    return;
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const signed = await api("POST", "/api/auth/login", {
      email: email.value.trim(),
      password: password.value,
    });
    if (signed.mfa_required) {
      button.disabled = false;
      password.value = "";
      useCsrf(signed.csrf_token);
      if (signed.stage === "enrol") {
        // Two-step sign-in is required but not set up yet: set it up first.
        location.assign(`/mfa${location.search}`);
      } else {
        showCodeStep();
      }
      return;
    }
    setSession(signed);
    location.assign(nextPath(signed.account.role));
  } catch (error) {
    button.disabled = false;
    showError(errorBox, error, password);
    if (error instanceof ApiError && error.code === "locked") {
      errorBox.textContent = lockedText(error);
    } else if (error instanceof ApiError && error.code === "bad_credentials") {
      errorBox.textContent = t("signin.wrong");
    } else {
      errorBox.textContent = errorText(error);
    }
    password.focus();
    password.select();
  }
});

// The second step of a staff sign-in: the authenticator's code or a recovery code.
const mfaForm = document.getElementById("mfa-form");
const code = document.getElementById("mfa-code");
const codeError = document.getElementById("mfa-error");

function showCodeStep() {
  form.hidden = true;
  mfaForm.hidden = false;
  showError(codeError, null, code);
  code.value = "";
  code.focus();
}

function backToPassword(text) {
  mfaForm.hidden = true;
  form.hidden = false;
  showError(errorBox, new Error("expired"), password);
  errorBox.textContent = text;
  password.focus();
}

mfaForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  showError(codeError, null, code);
  const value = code.value.trim();
  if (!value) {
    showError(codeError, new Error("missing"), code);
    codeError.textContent = t("mfa.missing");
    code.focus();
    return;
  }
  const button = mfaForm.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const signed = await api("POST", "/api/auth/mfa", { code: value });
    setSession(signed);
    if (signed.mfa_method === "recovery_code") {
      location.assign(`/mfa?used_recovery=1&next=${encodeURIComponent(nextPath(signed.account.role))}`);
      return;
    }
    location.assign(nextPath(signed.account.role));
  } catch (error) {
    button.disabled = false;
    if (error instanceof ApiError && error.code === "locked") {
      backToPassword(lockedText(error));
      return;
    }
    if (error instanceof ApiError && error.status === 401 && error.code !== "bad_code") {
      backToPassword(t("mfa.expired"));
      return;
    }
    showError(codeError, error, code);
    codeError.textContent = error instanceof ApiError && error.code === "bad_code" ? t("mfa.wrong") : errorText(error);
    code.select();
    code.focus();
  }
});
