import { ApiError, api, errorText, homeFor, initPage, setSession, showError, t } from "/assets/core.js";

/** Where to go after signing in: a same-site path from ?next=, else the role's home. */
export function nextPath(role) {
  const next = new URLSearchParams(location.search).get("next") || "";
  const safe = next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\");
  if (safe && !next.startsWith("/signin")) {
    // A visitor is not sent to staff pages, nor staff to visitor pages.
    const visitorPage = next.startsWith("/visitor/") || next.startsWith("/join/");
    if ((role === "visitor") === visitorPage || next === "/") return next;
  }
  return homeFor(role);
}

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
