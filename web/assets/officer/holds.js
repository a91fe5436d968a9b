// Legal hold on a visit's recordings: a badge for everyone, and for administrators a button that
// opens a small form (a reason is required) to place or lift the hold. Used by the recordings
// search and the playback page.

import { announce, api, el, session, showError, t } from "/assets/core.js";

const ADMIN_ROLES = new Set(["facility_admin", "agency_admin"]);

export function canChangeHolds() {
  return ADMIN_ROLES.has(session()?.account?.role);
}

export function holdBadge(active) {
  return active
    ? el("span", { class: "badge warn" }, t("officer.hold.on"))
    : el("span", { class: "muted" }, t("officer.hold.off"));
}

/**
 * The hold control of one visit: badge, and for administrators a button and its form.
 * `label` names the visit for screen readers; `onChange(hold)` runs after a change.
 */
export function holdControl({ visitId, active, label, onChange }) {
  const box = el("div", { class: "hold-control", dataset: { visitId: String(visitId) } });
  const badge = holdBadge(active);
  box.append(badge);
  if (!canChangeHolds()) return box;
  const action = active ? "lift" : "place";
  const formId = `hold-form-${visitId}`;
  const reasonId = `hold-reason-${visitId}`;
  const errorId = `hold-error-${visitId}`;
  const reason = el("input", { id: reasonId, type: "text", maxlength: "500", required: true,
    autocomplete: "off" });
  const error = el("p", { id: errorId, class: "error", role: "alert", hidden: true });
  const form = el(
    "form",
    { id: formId, class: "hold-form", hidden: true, novalidate: true },
    el("label", { for: reasonId }, t(`officer.hold.reason_${action}`, { visit: label })),
    reason,
    error,
    el("button", { type: "submit", class: action === "place" ? "primary" : "danger" },
      t(`officer.hold.confirm_${action}`)),
    el("button", { type: "button", onclick: () => { form.hidden = true; open.focus(); } },
      t("officer.hold.back")),
  );
  const open = el(
    "button",
    { type: "button", "aria-expanded": "false", "aria-controls": formId,
      "aria-label": t(`officer.hold.${action}_label`, { visit: label }),
      onclick: () => {
        form.hidden = !form.hidden;
        open.setAttribute("aria-expanded", String(!form.hidden));
        if (!form.hidden) reason.focus();
      } },
    t(`officer.hold.${action}`),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (reason.value.trim().length < 3) {
      error.textContent = t("officer.hold.need_reason");
      error.hidden = false;
      reason.setAttribute("aria-invalid", "true");
      reason.setAttribute("aria-describedby", errorId);
      reason.focus();
      return;
    }
    try {
      const path = action === "place" ? `/api/visits/${visitId}/hold` : `/api/visits/${visitId}/hold/lift`;
      const hold = await api("POST", path, { reason: reason.value.trim() });
      announce(t(`officer.hold.done_${action}`));
      onChange?.(hold);
    } catch (failure) {
      showError(error, failure, reason);
    }
  });
  box.append(" ", open, form);
  return box;
}

/** A paragraph describing the hold history (who placed and lifted it, when, why). */
export function holdHistory(holds, timeZone, fmt) {
  return holds.map((hold) => el(
    "li",
    {},
    t("officer.hold.placed", { who: hold.placed_by, when: fmt(hold.placed_at, timeZone),
      reason: hold.reason }),
    hold.lifted_at
      ? ` ${t("officer.hold.lifted", { who: hold.lifted_by || "", when: fmt(hold.lifted_at, timeZone),
        reason: hold.lift_reason || "" })}`
      : "",
  ));
}

export async function refreshHolds(visitId) {
  return api("GET", `/api/visits/${visitId}/holds`);
}
