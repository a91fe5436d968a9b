// The visitor's waiting room and call, reached two ways:
// - /visitor/call?visit_id=N: signed in; the session cookie authenticates the socket.
// - /join/<token>: the e-mailed join link, no sign-in; the token authenticates the socket
//   (sent in the first `auth` message, so it stays out of server logs).
import { api, initPage, showError, t } from "/assets/core.js";
import { runCallScreen } from "/assets/visitor/call-ui.js";

const refusedBox = document.getElementById("call-refused");

function refuse(key) {
  refusedBox.textContent = t(key);
  refusedBox.hidden = false;
}

if (location.pathname.startsWith("/join/")) {
  await initPage({ area: "call", titleKey: "call.title", needsSession: false });
  const token = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
  if (!token || token.length > 2000) refuse("call.error.join_link_invalid");
  else runCallScreen({ visit: null, sessionOptions: { token }, signedIn: false });
} else {
  await initPage({ area: "call", titleKey: "call.title", roles: ["visitor"] });
  const raw = new URLSearchParams(location.search).get("visit_id") || "";
  if (!/^[0-9]{1,10}$/.test(raw)) {
    refuse("call.error.visit_required");
  } else {
    try {
      const visit = await api("GET", `/api/visits/${raw}`);
      runCallScreen({ visit, sessionOptions: { visitId: visit.id }, signedIn: true });
    } catch (error) {
      showError(refusedBox, error);
    }
  }
}
