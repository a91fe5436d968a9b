// /join/<token>: the e-mailed join link. No sign-in: the token authenticates the socket
// (sent in the first `auth` message, so it stays out of server logs).
import { initPage, t } from "/assets/core.js";
import { runCallScreen } from "/assets/visitor/call-ui.js";

await initPage({ area: "call", titleKey: "call.title", needsSession: false });
const token = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
if (!token || token.length > 2000) {
  const box = document.getElementById("call-refused");
  box.textContent = t("call.error.join_link_invalid");
  box.hidden = false;
} else {
  runCallScreen({ visit: null, sessionOptions: { token }, signedIn: false });
}
