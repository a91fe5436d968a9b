// Admin home: the facility at a glance (waiting approvals, kiosks offline, today's visits).

import { api, el, showError, t } from "/assets/core.js";
import { dateIn, startAdminPage } from "/assets/admin/common.js";


const { facility } = await startAdminPage("overview.title");
const main = document.getElementById("main");

if (facility) {
  const error = el("p", { class: "error", role: "alert", hidden: true, id: "overview-error" });
  const stats = el("dl", { class: "stats", id: "overview-stats" });
  main.append(
    el(
      "section",
      { "aria-labelledby": "today-title" },
      el("h2", { id: "today-title" }, t("overview.at_a_glance")),
      stats,
      error,
    ),
    el(
      "section",
      { "aria-labelledby": "tasks-title" },
      el("h2", { id: "tasks-title" }, t("overview.tasks")),
      el(
        "ul",
        { class: "task-links" },
        [
          ["/admin/approvals", "overview.link.approvals"],
          ["/admin/people", "overview.link.people"],
          ["/admin/rules", "overview.link.rules"],
          ["/admin/kiosks", "overview.link.kiosks"],
          ["/admin/staff", "overview.link.staff"],
          ["/admin/reports", "overview.link.reports"],
          ["/admin/audit", "overview.link.audit"],
        ].map(([href, key]) => el("li", {}, el("a", { href }, t(key)))),
      ),
    ),
  );
  try {
    const today = dateIn(facility.timezone);
    const [pending, kiosks, visits] = await Promise.all([
      api("GET", `/api/approvals?status=requested&facility_id=${facility.id}&limit=500`),
      api("GET", `/api/facilities/${facility.id}/kiosks`),
      api("GET", `/api/visits?facility_id=${facility.id}&date=${today}&limit=500`),
    ]);
    const enabled = kiosks.filter((k) => k.enabled);
    const offline = enabled.filter((k) => !k.online);
    const active = visits.filter((v) => v.state !== "cancelled");
    stats.append(
      stat("pending", t("overview.pending"), pending.length, "/admin/approvals", "overview.open_queue"),
      stat(
        "offline",
        t("overview.kiosks_offline"),
        t("overview.of_total", { count: offline.length, total: enabled.length }),
        "/admin/kiosks",
        "overview.open_kiosks",
      ),
      stat("visits", t("overview.visits_today"), active.length, "/officer/schedule", "overview.open_schedule"),
    );
  } catch (problem) {
    showError(error, problem);
  }
}

function stat(name, label, value, href, linkKey) {
  return el(
    "div",
    { class: "stat", dataset: { stat: name } },
    el("dt", {}, label),
    el("dd", {}, String(value)),
    el("dd", {}, el("a", { href }, t(linkKey))),
  );
}
