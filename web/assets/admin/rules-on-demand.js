// The "Visit now" part of the visiting-rules editor: on-demand visits on or off, their hours,
// length, whether they count toward the weekly limits, the least gap between a person's
// on-demand visits, and whether attorney and clergy approvals may use them. For a housing unit
// every field may be left to the facility's rule.

import { el, t } from "/assets/core.js";
import { field, localError } from "/assets/admin/common.js";

const FLAGS = ["on_demand_enabled", "on_demand_counts_toward_limit", "on_demand_privileged"];
const NUMBERS = [["on_demand_minutes", 5, 120], ["on_demand_gap_minutes", 0, 7 * 24 * 60]];

/**
 * `windowsEditor(prefix, windows)` is the hours table of rules-form.js. Returns {element,
 * read(body) -> the first control with an error (or null), fill(rules)}.
 */
export function onDemandEditor({ prefix, rules, isUnit, inherited, windowsEditor }) {
  const own = isUnit ? rules || {} : rules;
  const set = el("fieldset", {}, el("legend", {}, t("rules.group.on_demand")),
    el("p", { class: "hint" }, t("rules.hint.on_demand")));
  const flags = {};
  for (const key of FLAGS) {
    const id = `${prefix}-${key}`;
    if (isUnit) {
      const base = inherited[key] ? t("common.yes") : t("common.no");
      const select = el("select", { id },
        el("option", { value: "" }, t("rules.pin_inherit", { value: base })),
        el("option", { value: "true", selected: own[key] === true }, t("common.yes")),
        el("option", { value: "false", selected: own[key] === false }, t("common.no")));
      flags[key] = field(t(`rules.label.${key}`), select, t(`rules.hint.${key}`));
      set.append(flags[key].wrap);
    } else {
      const box = el("input", { type: "checkbox", id, checked: Boolean(own[key]) });
      box.setAttribute("aria-describedby", `${id}-hint`);
      set.append(el("label", { class: "inline", for: id }, box, t(`rules.label.${key}`)),
        el("p", { class: "hint", id: `${id}-hint` }, t(`rules.hint.${key}`)));
      flags[key] = { input: box };
    }
  }
  const grid = el("div", { class: "form-grid" });
  const numbers = {};
  for (const [key, min, max] of NUMBERS) {
    const input = el("input", { type: "number", min, max, step: 1, id: `${prefix}-${key}` });
    const current = own[key];
    if (current !== undefined && current !== null) input.value = current;
    let hint = t(`rules.hint.${key}`, { min, max });
    if (isUnit) {
      input.placeholder = String(inherited[key]);
      hint = `${hint} ${t("rules.inherit_hint", { value: inherited[key] })}`;
    }
    numbers[key] = { ...field(t(`rules.label.${key}`), input, hint), min, max };
    grid.append(numbers[key].wrap);
  }
  set.append(grid);

  const ownHours = el("input", { type: "checkbox", id: `${prefix}-od-own-hours` });
  const hours = windowsEditor(`${prefix}-od`,
    (isUnit ? own.on_demand_windows || inherited.on_demand_windows : own.on_demand_windows) || []);
  set.append(el("p", {}, t("rules.label.on_demand_windows")));
  if (isUnit) {
    ownHours.checked = Array.isArray(own.on_demand_windows);
    hours.wrap.hidden = !ownHours.checked;
    ownHours.addEventListener("change", () => (hours.wrap.hidden = !ownHours.checked));
    set.append(el("label", { class: "inline", for: ownHours.id }, ownHours,
      t("rules.own_on_demand_hours")));
  }
  set.append(hours.wrap);

  function read(body) {
    let first = null;
    for (const [key, entry] of Object.entries(flags)) {
      body[key] = isUnit
        ? (entry.input.value === "" ? null : entry.input.value === "true")
        : entry.input.checked;
    }
    for (const [key, entry] of Object.entries(numbers)) {
      const raw = entry.input.value.trim();
      const value = Number(raw);
      let error = null;
      if (!raw) {
        if (isUnit) body[key] = null;
        else error = "rules.required";
      } else if (!Number.isInteger(value) || value < entry.min || value > entry.max) {
        error = "rules.out_of_range";
      } else {
        body[key] = value;
      }
      entry.setError(error ? localError(error, { min: entry.min, max: entry.max }) : null);
      if (error) first = first || entry.input;
    }
    hours.error.hidden = true;
    if (!isUnit || ownHours.checked) {
      const { rows, bad } = hours.read();
      if (bad >= 0) {
        hours.error.textContent = t("rules.bad_window", { n: bad + 1 });
        hours.error.hidden = false;
        first = first || hours.wrap.querySelectorAll("tr")[bad + 1]?.querySelector("input");
      }
      body.on_demand_windows = rows;
    } else {
      body.on_demand_windows = null;
    }
    return first;
  }

  function fill(fresh) {
    for (const [key, entry] of Object.entries(numbers)) {
      const value = fresh[key];
      entry.input.value = value === undefined || value === null ? "" : value;
      entry.setError(null);
    }
    if (!isUnit) {
      for (const [key, entry] of Object.entries(flags)) entry.input.checked = Boolean(fresh[key]);
      hours.fill(fresh.on_demand_windows || []);
    }
  }

  return { element: set, read, fill };
}
