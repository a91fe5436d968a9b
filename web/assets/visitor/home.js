// /visitor/: where the visitor stands — next steps, upcoming visits, requests, ID status.
import { api, el, initPage, showError, t } from "/assets/core.js";
import { ACTIVE_STATES, badge, bothTimes, facility, joinOpen, visitBadge } from "/assets/visitor/common.js";
import { setUpVisitNow } from "/assets/visitor/visit-now.js";

await initPage({ area: "visitor", titleKey: "vhome.title", roles: ["visitor"] });

function step(text, href, linkText) {
  return el("li", {}, text, href ? " " : "", href ? el("a", { href }, linkText) : "");
}

try {
  const [me, approvals, visits] = await Promise.all([
    api("GET", "/api/me"),
    api("GET", "/api/approvals"),
    api("GET", "/api/visits?limit=200"),
  ]);
  const upcoming = visits.filter((v) => ACTIVE_STATES.has(v.state) &&
    Date.parse(v.end_utc) > Date.now());

  const steps = document.getElementById("next-steps");
  if (!me.email_verified) steps.append(step(t("vhome.step.verify")));
  if (me.id_status === "none" || me.id_status === "rejected") {
    steps.append(step(t(me.id_status === "rejected" ? "vhome.step.id_again" : "vhome.step.id"),
      "/visitor/profile", t("vhome.step.id_link")));
  } else if (me.id_status === "pending") {
    steps.append(step(t("vhome.step.id_pending")));
  }
  const approved = approvals.filter((a) => a.status === "approved");
  setUpVisitNow(approved);
  if (!approvals.length) {
    steps.append(step(t("vhome.step.request"), "/visitor/approvals", t("vhome.step.request_link")));
  } else if (!approved.length) {
    steps.append(step(t("vhome.step.wait_approval")));
  } else if (!upcoming.length) {
    steps.append(step(t("vhome.step.book"), "/visitor/book", t("vhome.step.book_link")));
  } else {
    steps.append(step(t("vhome.step.join")));
  }

  const list = document.getElementById("upcoming");
  for (const visit of upcoming.slice(0, 5)) {
    const rules = (await facility(visit.facility_id)).rules;
    const open = joinOpen(visit, rules.join_window_minutes);
    list.append(el("li", {},
      el("h3", {}, t("vhome.visit_with", { person: visit.person_name })),
      el("p", {}, bothTimes(visit.start_utc, visit.timezone), " ", visitBadge(visit)),
      open ? el("p", {}, el("a", { class: "button primary",
        href: `/visitor/call?visit_id=${visit.id}` }, t("visits.join"))) : ""));
  }
  document.getElementById("upcoming-none").hidden = upcoming.length > 0;

  const requests = document.getElementById("requests");
  for (const approval of approvals) {
    const person = `${approval.person.first_name} ${approval.person.last_name}`;
    requests.append(el("li", {},
      el("p", {}, el("strong", {}, person), ` · ${approval.facility_name} `,
        badge("approval", approval.status)),
      approval.reason ? el("p", { class: "muted" }, t("approvals.reason", { reason: approval.reason })) : ""));
  }
  document.getElementById("requests-none").hidden = approvals.length > 0;

  const idStatus = document.getElementById("id-status");
  idStatus.append(badge("id", me.id_status), " ", t(`id.${me.id_status}.long`));
  if (me.id_status === "rejected" && me.id_reject_reason) {
    idStatus.append(" ", t("id.reject_reason", { reason: me.id_reject_reason }));
  }
} catch (error) {
  showError("home-error", error);
}
