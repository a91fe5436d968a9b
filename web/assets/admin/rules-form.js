// The visiting-rules editor, used for the facility (every field set) and for a housing unit
// (a partial override: an empty field means "use the facility's rule").

import { el, t } from "/assets/core.js";
import { field, localError } from "/assets/admin/common.js";
import { onDemandEditor } from "/assets/admin/rules-on-demand.js";

const WEEKDAYS = [0, 1, 2, 3, 4, 5, 6];

// The fields of the rules schema (schemas_facilities.RulesIn), grouped for the form.
export const RULE_GROUPS = [
  ["slots", [["slot_minutes", 5, 240], ["buffer_minutes", 0, 120]]],
  [
    "booking",
    [
      ["lead_min_minutes", 0, 60 * 24 * 89],
      ["lead_max_days", 1, 90],
      ["cancel_lead_minutes", 0, 14 * 24 * 60],
      ["max_visits_per_person_week", 0, 100],
      ["max_visits_per_visitor_week", 0, 100],
    ],
  ],
  [
    "joining",
    [
      ["join_window_minutes", 0, 120],
      ["no_show_minutes", 1, 120],
      ["warning_seconds", 5, 3600],
      ["lost_credit_seconds", 0, 3600],
    ],
  ],
  ["notices", [["reminder_minutes", 0, 7 * 24 * 60], ["retention_days", 1, 3650]]],
];
const MAX_WARNINGS = 5;

function weekdayName(day) {
  // 2024-01-01 was a Monday; weekday 0 = Monday in the rules.
  const date = new Date(Date.UTC(2024, 0, 1 + day));
  return new Intl.DateTimeFormat(document.documentElement.lang || "en", {
    weekday: "long",
    timeZone: "UTC",
  }).format(date);
}

/** Describe a value for people: "300, 60" for warnings, "Yes"/"No" for the PIN. */
export function describeRule(key, value) {
  if (key === "warning_seconds") return value.length ? value.join(", ") : t("rules.none");
  if (typeof value === "boolean") return value ? t("common.yes") : t("common.no");
  if (key === "windows" || key === "on_demand_windows") {
    return t("rules.windows_count", { count: value.length });
  }
  return t(`rules.unit.${key}`, { value });
}

function windowsEditor(prefix, windows) {
  const body = el("tbody");
  const error = el("p", { class: "error", id: `${prefix}-windows-error`, hidden: true, role: "alert" });
  let counter = 0;
  const addRow = (w = { weekday: 0, start: "08:00", end: "20:00" }) => {
    counter += 1;
    const n = counter;
    const day = el(
      "select",
      { "aria-label": t("rules.window_day", { n }), class: "w-day" },
      WEEKDAYS.map((d) => el("option", { value: d, selected: d === w.weekday }, weekdayName(d))),
    );
    const start = el("input", { type: "time", value: w.start, class: "w-start", "aria-label": t("rules.window_start", { n }) });
    const end = el("input", { type: "time", value: w.end, class: "w-end", "aria-label": t("rules.window_end", { n }) });
    const remove = el("button", { type: "button", class: "danger" }, t("rules.window_remove"));
    remove.setAttribute("aria-label", t("rules.window_remove_n", { n }));
    const row = el("tr", {}, el("td", {}, day), el("td", {}, start), el("td", {}, end), el("td", {}, remove));
    remove.addEventListener("click", () => {
      const next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      (next?.querySelector("select") || add).focus();
    });
    body.append(row);
    return row;
  };
  const add = el("button", { type: "button" }, t("rules.window_add"));
  add.addEventListener("click", () => addRow().querySelector("select").focus());
  for (const w of windows) addRow(w);
  const table = el(
    "table",
    { class: "windows-table" },
    el("caption", {}, t("rules.windows_caption")),
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        [t("rules.window_day_col"), t("rules.window_start_col"), t("rules.window_end_col"), t("rules.window_actions_col")].map(
          (h) => el("th", { scope: "col" }, h),
        ),
      ),
    ),
    body,
  );
  const read = () => {
    const rows = [...body.querySelectorAll("tr")].map((row) => ({
      weekday: Number(row.querySelector(".w-day").value),
      start: row.querySelector(".w-start").value,
      end: row.querySelector(".w-end").value,
    }));
    const bad = rows.findIndex((w) => !w.start || !w.end || !(w.start < w.end || w.end === "00:00"));
    return { rows, bad };
  };
  const wrap = el(
    "div",
    { class: "windows" },
    el("p", { class: "hint", id: `${prefix}-windows-hint` }, t("rules.windows_hint")),
    el("div", { class: "table-wrap" }, table),
    add,
    error,
  );
  return { wrap, read, error, fill: (list) => (body.replaceChildren(), list.forEach(addRow)) };
}

/**
 * Build the editor. `mode`: "facility" (all fields required) or "unit" (override of `inherited`).
 * Returns {element, read() -> body or null (errors shown), showErrors(details), fill(rules)}.
 */
export function rulesEditor({ prefix, rules, mode = "facility", inherited = null }) {
  const isUnit = mode === "unit";
  const override = rules || {};
  const inputs = {};
  const fieldsets = [];

  const ownHours = el("input", { type: "checkbox", id: `${prefix}-own-hours` });
  const windows = windowsEditor(prefix, isUnit ? override.windows || inherited.windows : rules.windows);
  const hoursSet = el("fieldset", {}, el("legend", {}, t("rules.group.hours")));
  if (isUnit) {
    ownHours.checked = Array.isArray(override.windows);
    windows.wrap.hidden = !ownHours.checked;
    ownHours.addEventListener("change", () => (windows.wrap.hidden = !ownHours.checked));
    hoursSet.append(el("label", { class: "inline", for: ownHours.id }, ownHours, t("rules.own_hours")));
  }
  hoursSet.append(windows.wrap);
  fieldsets.push(hoursSet);

  for (const [group, keys] of RULE_GROUPS) {
    const set = el("fieldset", {}, el("legend", {}, t(`rules.group.${group}`)));
    const grid = el("div", { class: "form-grid" });
    for (const [key, min, max] of keys) {
      const isList = key === "warning_seconds";
      const input = isList
        ? el("input", { type: "text", inputmode: "numeric", autocomplete: "off", id: `${prefix}-${key}` })
        : el("input", { type: "number", min, max, step: 1, id: `${prefix}-${key}` });
      const current = isUnit ? override[key] : rules[key];
      if (current !== undefined && current !== null) input.value = isList ? current.join(", ") : current;
      let hint = t(`rules.hint.${key}`, { min, max });
      if (isUnit) {
        const base = isList ? inherited[key].join(", ") : inherited[key];
        input.placeholder = String(base);
        hint = `${hint} ${t("rules.inherit_hint", { value: base })}`;
      }
      inputs[key] = { ...field(t(`rules.label.${key}`), input, hint), min, max, isList };
      grid.append(inputs[key].wrap);
    }
    set.append(grid);
    fieldsets.push(set);
  }

  const kioskSet = el("fieldset", {}, el("legend", {}, t("rules.group.kiosk")));
  let pin;
  if (isUnit) {
    const base = inherited.kiosk_pin_required ? t("common.yes") : t("common.no");
    const select = el(
      "select",
      { id: `${prefix}-kiosk_pin_required` },
      el("option", { value: "" }, t("rules.pin_inherit", { value: base })),
      el("option", { value: "true", selected: override.kiosk_pin_required === true }, t("common.yes")),
      el("option", { value: "false", selected: override.kiosk_pin_required === false }, t("common.no")),
    );
    pin = field(t("rules.label.kiosk_pin_required"), select, t("rules.hint.kiosk_pin_required"));
    kioskSet.append(pin.wrap);
  } else {
    const box = el("input", { type: "checkbox", id: `${prefix}-kiosk_pin_required`, checked: rules.kiosk_pin_required });
    box.setAttribute("aria-describedby", `${prefix}-pin-hint`);
    kioskSet.append(
      el("label", { class: "inline", for: box.id }, box, t("rules.label.kiosk_pin_required")),
      el("p", { class: "hint", id: `${prefix}-pin-hint` }, t("rules.hint.kiosk_pin_required")),
    );
    pin = { input: box };
  }
  fieldsets.push(kioskSet);
  const onDemand = onDemandEditor({ prefix, rules: isUnit ? override : rules, isUnit, inherited,
    windowsEditor });
  fieldsets.push(onDemand.element);

  function readNumber(key, entry) {
    const raw = entry.input.value.trim();
    if (!raw) {
      if (isUnit) return { value: null };
      return { error: "rules.required" };
    }
    if (entry.isList) {
      const parts = raw.split(/[\s,;]+/).filter(Boolean).map(Number);
      const ok =
        parts.length <= MAX_WARNINGS &&
        parts.every((n) => Number.isInteger(n) && n >= entry.min && n <= entry.max);
      return ok ? { value: parts } : { error: "rules.bad_list" };
    }
    const value = Number(raw);
    if (!Number.isInteger(value) || value < entry.min || value > entry.max) {
      return { error: "rules.out_of_range" };
    }
    return { value };
  }

  function read() {
    const body = {};
    let first = null;
    for (const [key, entry] of Object.entries(inputs)) {
      const result = readNumber(key, entry);
      entry.setError(result.error ? localError(result.error, { min: entry.min, max: entry.max, count: MAX_WARNINGS }) : null);
      if (result.error) first = first || entry.input;
      else body[key] = result.value;
    }
    windows.error.hidden = true;
    if (!isUnit || ownHours.checked) {
      const { rows, bad } = windows.read();
      if (bad >= 0) {
        windows.error.textContent = t("rules.bad_window", { n: bad + 1 });
        windows.error.hidden = false;
        first = first || windows.wrap.querySelectorAll("tr")[bad + 1]?.querySelector("input");
      }
      body.windows = rows;
    } else {
      body.windows = null;
    }
    if (isUnit) body.kiosk_pin_required = pin.input.value === "" ? null : pin.input.value === "true";
    else body.kiosk_pin_required = pin.input.checked;
    first = first || onDemand.read(body);
    if (first) {
      first.focus();
      return null;
    }
    return body;
  }

  /** Put the server's validation details (loc = [field, ...]) next to their fields. */
  function showErrors(details) {
    let shown = false;
    for (const item of details || []) {
      const key = item.loc?.[0];
      if (key === "windows") {
        windows.error.textContent = t("rules.bad_window", { n: Number(item.loc[1] ?? 0) + 1 });
        windows.error.hidden = false;
        shown = true;
      } else if (inputs[key]) {
        inputs[key].setError(localError("rules.out_of_range", { min: inputs[key].min, max: inputs[key].max }));
        shown = true;
      }
    }
    return shown;
  }

  function fill(fresh) {
    for (const [key, entry] of Object.entries(inputs)) {
      const value = fresh[key];
      entry.input.value = value === undefined || value === null ? "" : entry.isList ? value.join(", ") : value;
      entry.setError(null);
    }
    if (!isUnit) {
      windows.fill(fresh.windows);
      pin.input.checked = fresh.kiosk_pin_required;
    }
    onDemand.fill(fresh);
  }

  return { element: el("div", { class: "rules-editor" }, fieldsets), read, showErrors, fill };
}
