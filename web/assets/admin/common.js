// Shared by the facility-admin pages: page start-up with the facility choice, form fields with
// linked hints and errors, confirmation dialogs, tables and facility-time conversions.

import { api, ApiError, el, initPage, showError, t } from "/assets/core.js";

export const ADMIN_ROLES = ["facility_admin", "agency_admin"];
const FACILITY_KEY = "vv.admin.facility";

/**
 * Start an admin page: shell, role check, then the facility this page works on.
 * Facility admins get their own; agency admins choose one (remembered, and `?facility=` wins).
 * Resolves with `{session, facility}`; `facility` is the full FacilityOut.
 */
export async function startAdminPage(titleKey) {
  const session = await initPage({ area: "admin", titleKey, roles: ADMIN_ROLES });
  const account = session.account;
  let facilities = [];
  let facilityId = account.facility_id;
  if (account.role === "agency_admin") {
    facilities = await api("GET", "/api/facilities");
    const wanted = Number(
      new URLSearchParams(location.search).get("facility") || localStorage.getItem(FACILITY_KEY),
    );
    facilityId = facilities.some((f) => f.id === wanted) ? wanted : facilities[0]?.id;
  }
  if (!facilityId) {
    const main = document.getElementById("main");
    main.append(el("p", { class: "notice" }, t("admin.no_facility")));
    return { session, facility: null };
  }
  const facility = await api("GET", `/api/facilities/${facilityId}`);
  renderFacilityPicker(facility, facilities);
  return { session, facility };
}

function renderFacilityPicker(facility, facilities) {
  const slot = document.getElementById("facility-picker");
  if (!slot) return;
  if (facilities.length < 2) {
    slot.replaceChildren(
      el("p", { class: "facility-name" }, t("admin.facility_is", { name: facility.name })),
    );
    return;
  }
  const select = el(
    "select",
    {
      id: "facility-select",
      onchange: (event) => {
        localStorage.setItem(FACILITY_KEY, event.target.value);
        const url = new URL(location.href);
        url.searchParams.set("facility", event.target.value);
        location.assign(url.toString());
      },
    },
    facilities.map((f) => el("option", { value: f.id, selected: f.id === facility.id }, f.name)),
  );
  slot.replaceChildren(
    el("label", { for: "facility-select" }, t("admin.facility_choose")),
    select,
  );
}

let fieldCounter = 0;

/**
 * A labelled control with an optional hint and an error line, linked by aria-describedby.
 * Returns `{wrap, input, error, setError(err)}`.
 */
export function field(labelText, input, hintText) {
  fieldCounter += 1;
  const id = input.id || `f${fieldCounter}`;
  input.id = id;
  const hint = hintText ? el("p", { class: "hint", id: `${id}-hint` }, hintText) : null;
  const error = el("p", { class: "error", id: `${id}-error`, hidden: true });
  const described = [hint ? hint.id : null].filter(Boolean);
  if (described.length) input.setAttribute("aria-describedby", described.join(" "));
  const wrap = el("div", { class: "field" }, el("label", { for: id }, labelText), hint, input, error);
  return {
    wrap,
    input,
    error,
    setError(err) {
      showError(error, err, input);
      const ids = [...described];
      if (err) ids.push(error.id);
      if (ids.length) input.setAttribute("aria-describedby", ids.join(" "));
      else input.removeAttribute("aria-describedby");
    },
  };
}

/** A message for a client-side check, shaped like an ApiError so showError can print it. */
export function localError(key, vars) {
  return new ApiError(400, "local", t(key, vars));
}

/**
 * A modal confirmation (keyboard operable: <dialog> with showModal, Esc cancels).
 * With `reasonLabel` a required text box is shown. Resolves `{ok, reason}`.
 */
export function confirmDialog({ title, message, confirmLabel, danger = false, reasonLabel }) {
  return new Promise((resolve) => {
    const opener = document.activeElement;
    const titleId = `dlg-title-${++fieldCounter}`;
    const reason = reasonLabel ? el("textarea", { rows: 3, "aria-required": "true", maxlength: 2000 }) : null;
    const reasonField = reason ? field(reasonLabel, reason) : null;
    const confirm = el(
      "button",
      { type: "submit", class: danger ? "danger solid" : "primary" },
      confirmLabel,
    );
    const cancel = el("button", { type: "button" }, t("common.cancel"));
    const form = el(
      "form",
      { method: "dialog" },
      el("h2", { id: titleId }, title),
      message ? el("p", {}, message) : null,
      reasonField ? reasonField.wrap : null,
      el("div", { class: "row" }, confirm, cancel),
    );
    const dialog = el("dialog", { class: "vv-dialog", "aria-labelledby": titleId }, form);
    let answer = { ok: false, reason: "" };
    form.addEventListener("submit", (event) => {
      if (reason && !reason.value.trim()) {
        event.preventDefault();
        reasonField.setError(localError("admin.reason_required"));
        reason.focus();
        return;
      }
      answer = { ok: true, reason: reason ? reason.value.trim() : "" };
    });
    cancel.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      dialog.remove();
      if (opener && opener.isConnected) opener.focus();
      resolve(answer);
    });
    document.body.append(dialog);
    dialog.showModal();
    (reason || confirm).focus();
  });
}

/** A table with a caption; `rows` are arrays of cells (strings or nodes). */
export function dataTable(caption, headers, rows, className = "") {
  return el(
    "table",
    { class: className },
    el("caption", {}, caption),
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
    el(
      "tbody",
      {},
      rows.map((cells) => el("tr", {}, cells.map((c) => el("td", {}, c)))),
    ),
  );
}

/** Put a button in a busy state while `work` runs; errors go to `errorTarget`. */
export async function busy(button, work, errorTarget, control) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    if (errorTarget) showError(errorTarget, null, control);
    return await work();
  } catch (error) {
    if (errorTarget) showError(errorTarget, error, control);
    else throw error;
    return undefined;
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

// ---------------------------------------------------------------------- facility time

function zoneParts(date, timeZone) {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(date);
  const get = (type) => Number(parts.find((p) => p.type === type).value);
  return {
    year: get("year"),
    month: get("month"),
    day: get("day"),
    hour: get("hour"),
    minute: get("minute"),
    second: get("second"),
  };
}

function zoneOffsetMs(date, timeZone) {
  const p = zoneParts(date, timeZone);
  const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return asUtc - Math.floor(date.getTime() / 1000) * 1000;
}

/** "2026-05-01T14:30" read as wall-clock time in `timeZone` -> ISO instant in UTC. */
export function zonedToUtcIso(local, timeZone) {
  const [datePart, timePart = "00:00"] = local.split("T");
  const [y, m, d] = datePart.split("-").map(Number);
  const [hh, mm] = timePart.split(":").map(Number);
  const guess = Date.UTC(y, m - 1, d, hh, mm);
  let instant = guess - zoneOffsetMs(new Date(guess), timeZone);
  instant = guess - zoneOffsetMs(new Date(instant), timeZone);
  return new Date(instant).toISOString();
}

/** The calendar date ("YYYY-MM-DD") in `timeZone` at `date` (default now). */
export function dateIn(timeZone, date = new Date()) {
  const p = zoneParts(date, timeZone);
  return `${p.year}-${String(p.month).padStart(2, "0")}-${String(p.day).padStart(2, "0")}`;
}

/** "YYYY-MM-DD" `days` after (or before) another one. */
export function addDays(isoDate, days) {
  const [y, m, d] = isoDate.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}
