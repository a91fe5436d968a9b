import { ApiError, api, errorText, homeFor, initPage, t } from "/assets/core.js";
import { showFormError } from "/assets/auth/forms.js";

const current = await initPage({ area: "auth", titleKey: "verify.title" });
const token = new URLSearchParams(location.search).get("token") || "";
const working = document.getElementById("verify-working");
const errorBox = document.getElementById("verify-error");

function failed(text) {
  working.hidden = true;
  errorBox.textContent = text;
  errorBox.hidden = false;
  const resend = document.getElementById("verify-resend");
  if (current?.account?.role === "visitor") resend.hidden = false;
  else {
    document.getElementById("verify-next").hidden = false;
  }
}

if (token.length < 10 || token.length > 200) {
  failed(t("verify.invalid"));
} else {
  try {
    await api("POST", "/api/auth/verify-email", { token });
    working.hidden = true;
    document.getElementById("verify-ok").hidden = false;
    document.getElementById("verify-next").hidden = false;
    if (current) document.getElementById("verify-continue").href = homeFor(current.account.role);
  } catch (error) {
    failed(error instanceof ApiError && error.code === "invalid_token" ? t("verify.invalid")
      : errorText(error));
  }
}

document.getElementById("verify-resend").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  try {
    await api("POST", "/api/auth/resend-verification", {});
    showFormError(form, t("verify.resent"));
  } catch (error) {
    showFormError(form, error);
  }
});
