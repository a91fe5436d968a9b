// /kiosk/setup: staff enter the kiosk's device token; it is saved in this browser only.

import { initPage, t } from "/assets/core.js";
import { TOKEN_PATTERN, forgetToken, saveToken, savedToken } from "./token.js";

const $ = (id) => document.getElementById(id);

function fieldError(text) {
  const node = $("setup-error");
  const field = $("device-token");
  node.textContent = text;
  node.hidden = !text;
  if (text) {
    field.setAttribute("aria-invalid", "true");
    field.setAttribute("aria-describedby", "token-hint setup-error");
  } else {
    field.removeAttribute("aria-invalid");
    field.setAttribute("aria-describedby", "token-hint");
  }
}

function showCurrent() {
  const token = savedToken();
  const node = $("setup-current");
  node.hidden = !token;
  if (token) node.textContent = t("kiosk.setup.current", { id: token.split(".")[0] });
}

async function main() {
  await initPage({ area: "kiosk", titleKey: "kiosk.setup.title", needsSession: false });
  showCurrent();
  $("setup-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("device-token").value.trim();
    if (!TOKEN_PATTERN.test(token)) {
      fieldError(t("kiosk.setup.invalid"));
      $("device-token").focus();
      return;
    }
    fieldError("");
    saveToken(token);
    location.href = "/kiosk/";
  });
  $("setup-forget").addEventListener("click", () => {
    forgetToken();
    showCurrent();
    fieldError("");
    $("device-token").value = "";
    $("device-token").focus();
  });
}

main();
