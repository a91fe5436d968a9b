// /visitor/visits: my visits — join (in the join window), cancel, reschedule, add to calendar,
// and the free make-up visit when the facility credited one (credit_flag).
import { announce, api, el, initPage, showError, t } from "/assets/core.js";
import { ACTIVE_STATES, bothTimes, facility, joinOpen, visitBadge } from "/assets/visitor/common.js";

await initPage({ area: "visitor", titleKey: "visits.title", roles: ["visitor"] });

const errorBox = document.getElementById("visits-error");

async function cancel(visit, button) {
  const item = button.closest("li");
  const confirmBox = item.querySelector(".confirm-cancel");
  if (confirmBox) {
    confirmBox.hidden = false;
    confirmBox.querySelector("button").focus();
    return;
  }
}

async function reallyCancel(visit) {
  try {
    await api("POST", `/api/visits/${visit.id}/cancel`, {});
    announce(t("visits.cancelled", { person: visit.person_name }));
    await render();
    document.getElementById("coming-title").focus();
  } catch (error) {
    showError(errorBox, error);
  }
}

function minutes(seconds) {
  return Math.round((seconds || 0) / 60);
}

async function item(visit) {
  const rules = (await facility(visit.facility_id)).rules;
  const active = ACTIVE_STATES.has(visit.state) && Date.parse(visit.end_utc) > Date.now();
  const canChange = active && visit.state === "scheduled" &&
    Date.parse(visit.start_utc) - Date.now() > rules.cancel_lead_minutes * 60000;
  const title = `visit-${visit.id}-title`;
  const children = [
    el("h3", { id: title }, t("visits.with", { person: visit.person_name })),
    el("p", {}, bothTimes(visit.start_utc, visit.timezone), " ", visitBadge(visit)),
    el("p", { class: "muted" }, t("visits.where", { facility: visit.facility_name,
      unit: visit.unit_name }),
      visit.privileged ? ` · ${t("visits.privileged")}` : ""),
  ];
  if (visit.minors.length) {
    children.push(el("p", {}, t("visits.minors", { names: visit.minors.map((m) => m.name).join(", ") })));
  }
  if (!active && (visit.connected_seconds || visit.lost_seconds)) {
    children.push(el("p", {}, t("visits.figures", { connected: minutes(visit.connected_seconds),
      lost: minutes(visit.lost_seconds) })));
  }
  const actions = el("p", { class: "row" });
  if (active && joinOpen(visit, rules.join_window_minutes)) {
    actions.append(el("a", { class: "button primary", href: `/visitor/call?visit_id=${visit.id}`,
      "aria-describedby": title }, t("visits.join")));
  } else if (active) {
    children.push(el("p", { class: "hint" }, t("visits.join_later",
      { minutes: rules.join_window_minutes })));
  }
  if (active) {
    actions.append(el("a", { class: "button", href: `/api/visits/${visit.id}/calendar.ics`,
      download: `visit-${visit.id}.ics`, "aria-describedby": title }, t("visits.ics")));
  }
  if (canChange) {
    actions.append(
      el("a", { class: "button", href: `/visitor/book?reschedule=${visit.id}`,
        "aria-describedby": title }, t("visits.reschedule")),
      el("button", { type: "button", class: "danger", "aria-describedby": title,
        onclick: (e) => cancel(visit, e.currentTarget) }, t("visits.cancel")));
  }
  if (visit.credit_flag && !visit.rebooked_as) {
    children.push(el("p", { class: "notice" }, t("visits.credit")));
    actions.append(el("a", { class: "button primary", href: `/visitor/book?rebook=${visit.id}`,
      "aria-describedby": title }, t("visits.rebook")));
  } else if (visit.rebooked_as) {
    children.push(el("p", { class: "muted" }, t("visits.rebooked")));
  }
  children.push(actions);
  if (canChange) {
    children.push(el("div", { class: "notice confirm-cancel", hidden: true },
      el("p", {}, t("visits.cancel_confirm")),
      el("button", { type: "button", class: "danger solid", onclick: () => reallyCancel(visit) },
        t("visits.cancel_yes")),
      el("button", { type: "button", onclick: (e) => {
        e.currentTarget.parentElement.hidden = true;
      } }, t("visits.cancel_no"))));
  }
  return el("li", {}, ...children);
}

async function render() {
  const visits = await api("GET", "/api/visits?limit=200");
  const now = Date.now();
  const coming = visits.filter((v) => ACTIVE_STATES.has(v.state) && Date.parse(v.end_utc) > now);
  const past = visits.filter((v) => !coming.includes(v)).reverse();
  document.getElementById("coming").replaceChildren(...await Promise.all(coming.map(item)));
  document.getElementById("past").replaceChildren(...await Promise.all(past.map(item)));
  document.getElementById("coming-none").hidden = coming.length > 0;
  document.getElementById("past-none").hidden = past.length > 0;
}

document.getElementById("coming-title").tabIndex = -1;
try {
  await render();
} catch (error) {
  showError(errorBox, error);
}
