import { ApiError, api, initPage, t } from "/assets/core.js";
import { clearErrors, focusFirstProblem, setFieldError, showFormError } from "/assets/auth/forms.js";

await initPage({ area: "auth", titleKey: "reset.title", needsSession: false });
const token = new URLSearchParams(location.search).get("token") || "";
const requestForm = document.getElementById("reset-request");
const confirmForm = document.getElementById("reset-confirm");

function done(titleKey, textKey) {
  requestForm.hidden = true;
  confirmForm.hidden = true;
  document.getElementById("reset-done").hidden = false;
  const title = document.getElementById("reset-done-title");
  title.textContent = t(titleKey);
  document.getElementById("reset-done-text").textContent = t(textKey);
  title.focus();
}

if (token) {
  confirmForm.hidden = false;
} else {
  requestForm.hidden = false;
}

requestForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(requestForm);
  const email = document.getElementById("reset-email");
  if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email.value.trim())) {
    setFieldError(email, t("signup.error.email"));
    email.focus();
    return;
  }
  try {
    await api("POST", "/api/auth/password-reset", { email: email.value.trim() });
    done("reset.sent_title", "reset.sent");
  } catch (error) {
    showFormError(requestForm, error);
  }
});

confirmForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(confirmForm);
  const password = document.getElementById("reset-password");
  const repeat = document.getElementById("reset-repeat");
  if (password.value.length < 10) setFieldError(password, t("signup.error.password"));
  else if (password.value !== repeat.value) setFieldError(repeat, t("reset.mismatch"));
  if (confirmForm.querySelector("[aria-invalid=true]")) {
    focusFirstProblem(confirmForm);
    return;
  }
  try {
    await api("POST", "/api/auth/password-reset/confirm", { token, password: password.value });
    done("reset.done_title", "reset.done");
  } catch (error) {
    if (error instanceof ApiError && error.code === "weak_password") {
      setFieldError(password, t("signup.error.password"));
      password.focus();
    } else if (error instanceof ApiError && error.code === "weak_password_context") {
      setFieldError(password, t("signup.error.password_context"));
      password.focus();
    } else if (error instanceof ApiError && (error.code === "invalid_token" || error.code === "invalid")) {
      showFormError(confirmForm, t("reset.invalid"));
    } else {
      showFormError(confirmForm, error);
    }
  }
});
