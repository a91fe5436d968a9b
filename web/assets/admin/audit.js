// Audit log: filtered reading (action, actor, facility-local dates), paging back with
// before_id, and verification of the whole hash chain.

import { announce, api, el, fmtDateTime, showError, t } from "/assets/core.js";
import { busy, field, localError, startAdminPage } from "/assets/admin/common.js";

const PAGE_SIZE = 50;
const ACTION_PATTERN = /^[a-z_]+(\.[a-z_]+)*\.?$/;

const { session, facility } = await startAdminPage("audit.title");
const main = document.getElementById("main");
const isAgencyAdmin = session.account.role === "agency_admin";
let nextBeforeId = null;
let currentQuery = "";

if (facility) {
  const staff = await api("GET", "/api/staff?include_inactive=true");
  main.append(
    el("p", { class: "muted" }, t("audit.lead")),
    verifySection(),
    filtersSection(staff),
    el(
      "section",
      { "aria-labelledby": "audit-list-title" },
      el("h2", { id: "audit-list-title", tabindex: "-1" }, t("audit.entries")),
      el("div", { id: "audit-list", class: "table-wrap" }),
      el("p", { id: "audit-count", class: "muted" }),
      olderButton(),
      el("p", { class: "error", id: "audit-error", role: "alert", hidden: true }),
    ),
  );
  await load(false);
}

function verifySection() {
  const button = el("button", { type: "button", class: "primary", id: "audit-verify" }, t("audit.verify"));
  const result = el("div", { id: "audit-verify-result" });
  const error = el("p", { class: "error", id: "audit-verify-error", role: "alert", hidden: true });
  button.addEventListener("click", () =>
    busy(
      button,
      async () => {
        result.replaceChildren(el("p", {}, t("audit.verifying")));
        const check = await api("POST", "/api/audit/verify");
        const message = check.ok
          ? t("audit.verify_ok", { count: check.checked })
          : t("audit.verify_bad", { count: check.checked });
        result.replaceChildren(
          el("p", { class: check.ok ? "ok" : "error", id: "audit-verify-message" }, message),
        );
        if (check.problems.length) {
          result.append(el("ul", { class: "error" }, check.problems.map((p) => el("li", {}, p))));
        }
        announce(message);
      },
      error,
    ),
  );
  return el(
    "section",
    { "aria-labelledby": "audit-verify-title" },
    el("h2", { id: "audit-verify-title" }, t("audit.verify_title")),
    el("p", { class: "muted" }, t("audit.verify_lead")),
    button,
    result,
    error,
  );
}

function filtersSection(staff) {
  const action = field(
    t("audit.action"),
    el("input", { type: "text", autocomplete: "off", maxlength: 80, spellcheck: "false" }),
    t("audit.action_hint"),
  );
  const actor = field(
    t("audit.actor"),
    el(
      "select",
      {},
      el("option", { value: "" }, t("audit.anyone")),
      staff.map((s) => el("option", { value: s.id }, `${s.name} (${s.email})`)),
    ),
  );
  const from = field(t("audit.date_from"), el("input", { type: "date" }));
  const to = field(t("audit.date_to"), el("input", { type: "date" }));
  const onlyHere = el("input", { type: "checkbox", id: "audit-only-facility", checked: true });
  const submit = el("button", { type: "submit", class: "primary" }, t("audit.apply"));
  const clear = el("button", { type: "button" }, t("audit.clear"));
  const form = el(
    "form",
    { id: "audit-filters", novalidate: true },
    el("div", { class: "filters" }, action.wrap, actor.wrap, from.wrap, to.wrap),
    isAgencyAdmin
      ? el("label", { class: "inline", for: onlyHere.id }, onlyHere, t("audit.only_facility", { name: facility.name }))
      : null,
    el("div", { class: "actions row" }, submit, clear),
  );
  const buildQuery = () => {
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    const actionText = action.input.value.trim();
    if (actionText) params.set("action", actionText);
    if (actor.input.value) params.set("actor_id", actor.input.value);
    if (from.input.value) params.set("date_from", from.input.value);
    if (to.input.value) params.set("date_to", to.input.value);
    if (!isAgencyAdmin || onlyHere.checked) params.set("facility_id", String(facility.id));
    return params;
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const actionText = action.input.value.trim();
    const badAction = actionText && !ACTION_PATTERN.test(actionText);
    const badRange = from.input.value && to.input.value && from.input.value > to.input.value;
    action.setError(badAction ? localError("audit.action_invalid") : null);
    to.setError(badRange ? localError("audit.range_invalid") : null);
    if (badAction || badRange) {
      (badAction ? action.input : to.input).focus();
      return;
    }
    currentQuery = buildQuery().toString();
    await busy(submit, () => load(false));
  });
  clear.addEventListener("click", async () => {
    form.reset();
    action.setError(null);
    to.setError(null);
    currentQuery = buildQuery().toString();
    await load(false);
  });
  currentQuery = buildQuery().toString();
  return el(
    "section",
    { "aria-labelledby": "audit-filters-title" },
    el("h2", { id: "audit-filters-title" }, t("audit.filters")),
    form,
  );
}

function olderButton() {
  const button = el("button", { type: "button", id: "audit-older", hidden: true }, t("audit.older"));
  button.addEventListener("click", () => busy(button, () => load(true)));
  return button;
}

function describeActor(item) {
  if (item.actor_email) return item.actor_email;
  return item.actor;
}

/** A translated label, or `fallback` when this language has none (a new action or key). */
function label(key, fallback, vars = {}) {
  const text = t(key, vars);
  return text === key ? fallback : text;
}

function valueText(value) {
  if (value === true) return t("audit.yes");
  if (value === false) return t("audit.no");
  if (value === null || value === undefined) return "-";
  if (Array.isArray(value)) return value.map(valueText).join(", ");
  if (typeof value === "object") {
    return Object.entries(value).map(([k, v]) => `${detailName(k)} ${valueText(v)}`).join(", ");
  }
  return String(value);
}

function detailName(key) {
  return label(`audit.detail.${key}`, key.replaceAll("_", " "));
}

/** The details as "Label: value" pairs in the page's language. */
function detailText(item) {
  const entries = Object.entries(item.detail || {});
  return entries.map(([k, v]) => `${detailName(k)}: ${valueText(v)}`).join("; ");
}

function actionCell(action) {
  const name = label(`audit.action.${action}`, action);
  if (name === action) return el("code", {}, action);
  // The words for people, the code for filtering and exports.
  return [name, " ", el("code", { class: "audit-code" }, action)];
}

function targetText(target) {
  if (!target) return "";
  const [kind, id] = target.split(":", 2);
  return id ? label(`audit.target.${kind}`, target, { id }) : target;
}

function outcomeText(outcome) {
  const key = `audit.outcome.${outcome}`;
  const text = t(key);
  return text === key ? outcome : text;
}

function row(item) {
  return el(
    "tr",
    { dataset: { auditId: item.id } },
    el("td", {}, fmtDateTime(item.at, facility.timezone)),
    el("td", {}, describeActor(item)),
    el("td", {}, actionCell(item.action)),
    el("td", {}, outcomeText(item.outcome)),
    el("td", {}, targetText(item.target)),
    el("td", { class: "audit-detail" }, detailText(item)),
  );
}

async function load(more) {
  const list = document.getElementById("audit-list");
  const older = document.getElementById("audit-older");
  const error = document.getElementById("audit-error");
  showError(error, null);
  const params = new URLSearchParams(currentQuery);
  if (more && nextBeforeId) params.set("before_id", String(nextBeforeId));
  try {
    const page = await api("GET", `/api/audit?${params}`);
    let body = list.querySelector("tbody");
    if (!more || !body) {
      body = el("tbody");
      const headers = ["at", "actor", "action", "outcome", "target", "detail"].map((k) =>
        el("th", { scope: "col" }, t(`audit.col.${k}`)),
      );
      list.replaceChildren(
        el(
          "table",
          { class: "audit-table" },
          el("caption", {}, t("audit.caption", { tz: facility.timezone })),
          el("thead", {}, el("tr", {}, headers)),
          body,
        ),
      );
    }
    const firstNew = page.items.length ? row(page.items[0]) : null;
    if (firstNew) body.append(firstNew, ...page.items.slice(1).map(row));
    nextBeforeId = page.next_before_id;
    older.hidden = !nextBeforeId;
    const shown = body.querySelectorAll("tr").length;
    document.getElementById("audit-count").textContent = shown
      ? t("audit.count", { count: shown })
      : t("audit.none");
    if (more) announce(t("audit.more_loaded", { count: page.items.length }));
  } catch (problem) {
    showError(error, problem);
  }
}
