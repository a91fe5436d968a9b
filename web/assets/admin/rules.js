// Rules page: the facility's visiting rules, housing units (add, per-unit overrides) and
// blackouts (see blackouts.js).

import { announce, api, ApiError, el, showError, t } from "/assets/core.js";
import { busy, dataTable, field, localError, startAdminPage } from "/assets/admin/common.js";
import { describeRule, rulesEditor } from "/assets/admin/rules-form.js";
import { blackoutsSection } from "/assets/admin/blackouts.js";

const { facility } = await startAdminPage("rules.title");
const main = document.getElementById("main");
let units = [];

if (facility) {
  units = await api("GET", `/api/facilities/${facility.id}/units`);
  main.append(
    el("p", { class: "muted" }, t("rules.lead", { tz: facility.timezone })),
    facilityRulesSection(),
    unitsSection(),
    blackoutsSection(facility, units),
  );
  renderUnits();
}

function facilityRulesSection() {
  const editor = rulesEditor({ prefix: "fr", rules: facility.rules });
  const error = el("p", { class: "error", id: "rules-error", role: "alert", hidden: true });
  const saved = el("p", { class: "ok", id: "rules-saved", hidden: true });
  const submit = el("button", { type: "submit", class: "primary" }, t("rules.save"));
  const form = el("form", { id: "facility-rules", novalidate: true }, editor.element, el("div", { class: "actions" }, submit), error, saved);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    saved.hidden = true;
    const body = editor.read();
    if (!body) {
      showError(error, localError("rules.fix_errors"));
      return;
    }
    await busy(
      submit,
      async () => {
        try {
          const fresh = await api("PUT", `/api/facilities/${facility.id}/rules`, body);
          facility.rules = fresh;
          editor.fill(fresh);
          saved.textContent = t("rules.saved");
          saved.hidden = false;
          announce(t("rules.saved"));
          units = await api("GET", `/api/facilities/${facility.id}/units`);
          renderUnits();
        } catch (problem) {
          if (problem instanceof ApiError && editor.showErrors(problem.details)) {
            throw localError("rules.fix_errors");
          }
          throw problem;
        }
      },
      error,
    );
  });
  return el(
    "section",
    { "aria-labelledby": "facility-rules-title" },
    el("h2", { id: "facility-rules-title" }, t("rules.facility_rules")),
    form,
  );
}

function unitsSection() {
  const name = field(t("rules.unit_name"), el("input", { type: "text", maxlength: 200, autocomplete: "off" }));
  const error = el("p", { class: "error", id: "unit-create-error", role: "alert", hidden: true });
  const submit = el("button", { type: "submit", class: "primary" }, t("rules.unit_add"));
  const form = el("form", { id: "unit-create", novalidate: true }, name.wrap, submit, error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!name.input.value.trim()) {
      name.setError(localError("rules.unit_name_required"));
      name.input.focus();
      return;
    }
    name.setError(null);
    await busy(
      submit,
      async () => {
        const unit = await api("POST", `/api/facilities/${facility.id}/units`, { name: name.input.value.trim() });
        units.push(unit);
        form.reset();
        renderUnits();
        announce(t("rules.unit_added", { name: unit.name }));
      },
      error,
    );
  });
  return el(
    "section",
    { "aria-labelledby": "units-title" },
    el("h2", { id: "units-title", tabindex: "-1" }, t("rules.units")),
    el("div", { id: "unit-list", class: "table-wrap" }),
    el("div", { id: "unit-editor" }),
    el("h3", {}, t("rules.unit_add_title")),
    form,
  );
}

function overrideSummary(unit) {
  const entries = Object.entries(unit.rules_override || {}).filter(([, v]) => v !== null);
  if (!entries.length) return t("rules.no_overrides");
  return el(
    "ul",
    {},
    entries.map(([key, value]) => el("li", {}, `${t(`rules.label.${key}`)}: ${describeRule(key, value)}`)),
  );
}

function renderUnits() {
  const slot = document.getElementById("unit-list");
  if (!slot) return;
  slot.replaceChildren(
    units.length
      ? dataTable(
          t("rules.units_caption", { name: facility.name }),
          [t("rules.unit_name"), t("rules.unit_overrides"), t("rules.unit_actions")],
          units.map((unit) => {
            const edit = el(
              "button",
              { type: "button", "aria-label": t("rules.unit_edit_named", { name: unit.name }) },
              t("rules.unit_edit"),
            );
            edit.addEventListener("click", () => openUnitEditor(unit));
            return [unit.name, overrideSummary(unit), edit];
          }),
          "unit-table",
        )
      : el("p", {}, t("rules.no_units")),
  );
}

function openUnitEditor(unit) {
  const slot = document.getElementById("unit-editor");
  const editor = rulesEditor({
    prefix: `unit${unit.id}`,
    rules: unit.rules_override || {},
    mode: "unit",
    inherited: facility.rules,
  });
  const error = el("p", { class: "error", id: "unit-rules-error", role: "alert", hidden: true });
  const submit = el("button", { type: "submit", class: "primary" }, t("rules.unit_save"));
  const cancel = el("button", { type: "button" }, t("common.cancel"));
  const titleId = "unit-editor-title";
  const close = () => {
    slot.replaceChildren();
    document.getElementById("units-title").focus();
  };
  cancel.addEventListener("click", close);
  const form = el(
    "form",
    { novalidate: true, id: "unit-rules" },
    el("p", { class: "muted" }, t("rules.unit_editor_lead")),
    editor.element,
    el("div", { class: "actions row" }, submit, cancel),
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = editor.read();
    if (!body) {
      showError(error, localError("rules.fix_errors"));
      return;
    }
    await busy(
      submit,
      async () => {
        try {
          const fresh = await api("PUT", `/api/units/${unit.id}/rules`, body);
          units = units.map((u) => (u.id === fresh.id ? fresh : u));
          renderUnits();
          announce(t("rules.unit_saved", { name: fresh.name }));
          close();
        } catch (problem) {
          if (problem instanceof ApiError && editor.showErrors(problem.details)) {
            throw localError("rules.fix_errors");
          }
          throw problem;
        }
      },
      error,
    );
  });
  slot.replaceChildren(
    el(
      "section",
      { class: "card", "aria-labelledby": titleId },
      el("h3", { id: titleId, tabindex: "-1" }, t("rules.unit_editor_title", { name: unit.name })),
      form,
    ),
  );
  document.getElementById(titleId).focus();
}
