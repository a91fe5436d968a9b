// /visitor/call?visit_id=N: the signed-in visitor's waiting room and call.
import { api, initPage, showError, t } from "/assets/core.js";
import { runCallScreen } from "/assets/visitor/call-ui.js";

await initPage({ area: "call", titleKey: "call.title", roles: ["visitor"] });
const raw = new URLSearchParams(location.search).get("visit_id") || "";
const refusedBox = document.getElementById("call-refused");
if (!/^[0-9]{1,10}$/.test(raw)) {
  refusedBox.textContent = t("call.error.visit_required");
  refusedBox.hidden = false;
} else {
  try {
    const visit = await api("GET", `/api/visits/${raw}`);
    runCallScreen({ visit, sessionOptions: { visitId: visit.id }, signedIn: true });
  } catch (error) {
    showError(refusedBox, error);
  }
}
