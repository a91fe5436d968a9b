// /visitor/profile: ID photo upload with a preview, name, phone and e-mail language, e-mail
// confirmation, and signing out everywhere.
import { ApiError, announce, api, apiRaw, fmtDate, initPage, showError, signOutEverywhere, t } from "/assets/core.js";
import { clearErrors, focusFirstProblem, setFieldError, showFormError } from "/assets/auth/forms.js";
import { badge } from "/assets/visitor/common.js";

const MAX_BYTES = 5 * 1024 * 1024;
await initPage({ area: "visitor", titleKey: "profile.title", roles: ["visitor"] });

const idForm = document.getElementById("id-form");
const fileInput = document.getElementById("id-file");
const preview = document.getElementById("id-preview");
let previewUrl = null;

function render(me) {
  const status = document.getElementById("profile-id-status");
  status.replaceChildren(badge("id", me.id_status), " ", t(`id.${me.id_status}.long`));
  if (me.id_status === "rejected" && me.id_reject_reason) {
    status.append(" ", t("id.reject_reason", { reason: me.id_reject_reason }));
  }
  document.getElementById("profile-email").textContent = me.email;
  document.getElementById("profile-dob").textContent = me.date_of_birth
    ? fmtDate(`${me.date_of_birth}T12:00:00Z`, "UTC") : "–";
  document.getElementById("profile-name").value = me.name;
  document.getElementById("profile-phone").value = me.phone || "";
  document.getElementById("profile-language").value = me.language || "en";
  document.getElementById("profile-verify").hidden = me.email_verified;
}

try {
  render(await api("GET", "/api/me"));
} catch (error) {
  showError("profile-error", error);
}

fileInput.addEventListener("change", () => {
  setFieldError(fileInput, "");
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = null;
  const file = fileInput.files[0];
  document.getElementById("id-preview-box").hidden = !file;
  if (!file) return;
  if (!["image/jpeg", "image/png"].includes(file.type)) {
    setFieldError(fileInput, t("profile.id_type"));
    document.getElementById("id-preview-box").hidden = true;
    return;
  }
  previewUrl = URL.createObjectURL(file);
  preview.src = previewUrl;
});

idForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(idForm);
  const file = fileInput.files[0];
  if (!file) setFieldError(fileInput, t("profile.id_missing"));
  else if (!["image/jpeg", "image/png"].includes(file.type)) setFieldError(fileInput, t("profile.id_type"));
  else if (file.size > MAX_BYTES) setFieldError(fileInput, t("profile.id_large"));
  if (idForm.querySelector("[aria-invalid=true]")) {
    focusFirstProblem(idForm);
    return;
  }
  const button = idForm.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const response = await apiRaw("PUT", "/api/me/id-photo", file, file.type);
    render(await response.json());
    fileInput.value = "";
    document.getElementById("id-preview-box").hidden = true;
    announce(t("profile.id_uploaded"));
  } catch (error) {
    if (error instanceof ApiError && error.code === "too_large") setFieldError(fileInput, t("profile.id_large"));
    else showFormError(idForm, error);
  } finally {
    button.disabled = false;
  }
});

const detailsForm = document.getElementById("details-form");
detailsForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(detailsForm);
  const name = document.getElementById("profile-name");
  const phone = document.getElementById("profile-phone");
  if (!name.value.trim()) setFieldError(name, t("profile.name_missing"));
  if (phone.value.trim() && !/^\+?[0-9 ()-]{5,32}$/.test(phone.value.trim())) {
    setFieldError(phone, t("profile.phone_invalid"));
  }
  if (detailsForm.querySelector("[aria-invalid=true]")) {
    focusFirstProblem(detailsForm);
    return;
  }
  try {
    const body = { name: name.value.trim(), language: document.getElementById("profile-language").value };
    if (phone.value.trim()) body.phone = phone.value.trim();
    render(await api("PATCH", "/api/me", body));
    announce(t("profile.saved"));
  } catch (error) {
    showFormError(detailsForm, error);
  }
});

document.getElementById("resend-button").addEventListener("click", async () => {
  try {
    await api("POST", "/api/auth/resend-verification", {});
    announce(t("profile.resent"));
  } catch (error) {
    showError("profile-error", error);
  }
});

document.getElementById("signout-everywhere").addEventListener("click", async () => {
  try {
    await signOutEverywhere();
  } catch (error) {
    showError("profile-error", error);
  }
});
