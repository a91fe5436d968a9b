import { ApiError, api, initPage, lang, t } from "/assets/core.js";
import { clearErrors, focusFirstProblem, invalidFields, setFieldError, showFormError } from "/assets/auth/forms.js";

await initPage({ area: "auth", titleKey: "signup.title", needsSession: false });

const form = document.getElementById("signup-form");
const fields = {
  name: document.getElementById("signup-name"),
  email: document.getElementById("signup-email"),
  password: document.getElementById("signup-password"),
  date_of_birth: document.getElementById("signup-dob"),
  phone: document.getElementById("signup-phone"),
};
const PHONE = /^\+?[0-9 ()-]{5,32}$/;

function ageOn(birth, today) {
  let age = today.getFullYear() - birth.getUTCFullYear();
  const beforeBirthday = today.getMonth() < birth.getUTCMonth() ||
    (today.getMonth() === birth.getUTCMonth() && today.getDate() < birth.getUTCDate());
  return beforeBirthday ? age - 1 : age;
}

/** The same checks as the server, so most mistakes are caught before sending. */
function checkLocally() {
  const value = (name) => fields[name].value.trim();
  if (!value("name")) setFieldError(fields.name, t("signup.error.name"));
  if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(value("email"))) {
    setFieldError(fields.email, t("signup.error.email"));
  }
  if (fields.password.value.length < 10) setFieldError(fields.password, t("signup.error.password"));
  const birth = value("date_of_birth") ? new Date(value("date_of_birth")) : null;
  if (!birth || Number.isNaN(birth.getTime())) {
    setFieldError(fields.date_of_birth, t("signup.error.dob"));
  } else if (birth > new Date()) {
    setFieldError(fields.date_of_birth, t("signup.error.dob_future"));
  } else if (ageOn(birth, new Date()) < 18) {
    setFieldError(fields.date_of_birth, t("signup.error.underage"));
  }
  if (!PHONE.test(value("phone"))) setFieldError(fields.phone, t("signup.error.phone"));
  return !form.querySelector("[aria-invalid=true]");
}

function showServerError(error) {
  const byCode = {
    underage: ["date_of_birth", "signup.error.underage"],
    invalid_date_of_birth: ["date_of_birth", "signup.error.dob_future"],
    weak_password: ["password", "signup.error.password"],
    weak_password_context: ["password", "signup.error.password_context"],
  };
  const known = error instanceof ApiError ? byCode[error.code] : null;
  if (known) {
    setFieldError(fields[known[0]], t(known[1]));
    return;
  }
  const names = invalidFields(error).filter((name) => name in fields);
  for (const name of names) setFieldError(fields[name], t(`signup.error.${name === "date_of_birth" ? "dob" : name}`));
  showFormError(form, error);
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(form);
  if (!checkLocally()) {
    focusFirstProblem(form);
    return;
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    await api("POST", "/api/auth/signup", {
      name: fields.name.value.trim(),
      email: fields.email.value.trim(),
      password: fields.password.value,
      date_of_birth: fields.date_of_birth.value,
      phone: fields.phone.value.trim(),
      // The account's e-mails are written in the language the page is shown in.
      language: lang(),
    });
    form.hidden = true;
    const done = document.getElementById("signup-done");
    done.hidden = false;
    document.getElementById("signup-done-title").focus();
  } catch (error) {
    showServerError(error);
    focusFirstProblem(form);
  } finally {
    button.disabled = false;
  }
});
