// /unlock-account?token=...: the link e-mailed to the owner of a locked account lifts the lock.
import { ApiError, api, errorText, initPage, t } from "/assets/core.js";

await initPage({ area: "auth", titleKey: "unlock.title", needsSession: false });
const token = new URLSearchParams(location.search).get("token") || "";
const working = document.getElementById("unlock-working");
const errorBox = document.getElementById("unlock-error");

try {
  if (token.length < 10 || token.length > 200) throw new ApiError(422, "invalid_token");
  await api("POST", "/api/auth/unlock", { token });
  document.getElementById("unlock-ok").hidden = false;
} catch (error) {
  errorBox.textContent = error instanceof ApiError && error.code === "invalid_token"
    ? t("unlock.invalid") : errorText(error);
  errorBox.hidden = false;
} finally {
  working.hidden = true;
  document.getElementById("unlock-next").hidden = false;
}
