// Staff accounts: list (optionally with switched-off accounts), create an officer or facility
// administrator with a temporary password, deactivate with a confirmation.

import { announce, api, el, fmtDate, showError, t } from "/assets/core.js";
import { busy, confirmDialog, dataTable, field, localError, startAdminPage } from "/assets/admin/common.js";

const MIN_PASSWORD = 10;

const { session, facility } = await startAdminPage("staff.title");
const main = document.getElementById("main");
const showInactive = el("input", { type: "checkbox", id: "staff-inactive" });

if (facility) {
  showInactive.addEventListener("change", refresh);
  main.append(
    el(
      "section",
      { "aria-labelledby": "staff-list-title" },
      el("h2", { id: "staff-list-title", tabindex: "-1" }, t("staff.list")),
      el("label", { class: "inline", for: "staff-inactive" }, showInactive, t("staff.show_inactive")),
      el("div", { id: "staff-list", class: "table-wrap" }),
    ),
    policyForm(),
    createForm(),
  );
  await refresh();
}

async function refresh() {
  const slot = document.getElementById("staff-list");
  try {
    const query = `facility_id=${facility.id}&include_inactive=${showInactive.checked}`;
    const accounts = await api("GET", `/api/staff?${query}`);
    slot.replaceChildren(
      accounts.length
        ? dataTable(
            t("staff.caption", { name: facility.name }),
            [
              t("staff.name"),
              t("staff.email"),
              t("staff.role"),
              t("staff.state"),
              t("staff.mfa"),
              t("staff.since"),
              t("staff.actions"),
            ],
            accounts.map((account) => [
              account.name,
              account.email,
              t(`staff.role.${account.role}`),
              account.active
                ? el("span", { class: "badge ok" }, t("staff.active"))
                : el("span", { class: "badge bad" }, t("staff.inactive")),
              account.mfa_enrolled
                ? el("span", { class: "badge ok" }, t("staff.mfa_on"))
                : el("span", { class: "badge warn" }, t("staff.mfa_off")),
              fmtDate(account.created_at, facility.timezone),
              staffActions(account),
            ]),
            "staff-table",
          )
        : el("p", {}, t("staff.none")),
    );
  } catch (error) {
    const problem = el("p", { class: "error", role: "alert" });
    slot.replaceChildren(problem);
    showError(problem, error);
  }
}

function staffActions(account) {
  if (!account.active || account.id === session.account.id) return "";
  const error = el("p", { class: "error", id: `staff-${account.id}-error`, role: "alert", hidden: true });
  const names = { name: account.name };
  const button = el(
    "button",
    { type: "button", class: "danger", "aria-label": t("staff.deactivate_named", names) },
    t("staff.deactivate"),
  );
  button.addEventListener("click", async () => {
    const answer = await confirmDialog({
      title: t("staff.deactivate_title", names),
      message: t("staff.deactivate_message"),
      confirmLabel: t("staff.deactivate"),
      danger: true,
    });
    if (!answer.ok) return;
    await busy(
      button,
      async () => {
        await api("POST", `/api/staff/${account.id}/deactivate`);
        announce(t("staff.deactivated", names));
        await refresh();
        document.getElementById("staff-list-title").focus();
      },
      error,
    );
  });
  return el("div", {}, button, " ", resetButton(account, error), error);
}

/** An administrator's recovery for a colleague who lost their authenticator (audited). */
function resetButton(account, error) {
  const names = { name: account.name };
  const button = el(
    "button",
    { type: "button", "aria-label": t("staff.mfa_reset_named", names) },
    t("staff.mfa_reset"),
  );
  button.addEventListener("click", async () => {
    const answer = await confirmDialog({
      title: t("staff.mfa_reset_title", names),
      message: t("staff.mfa_reset_message"),
      confirmLabel: t("staff.mfa_reset"),
      danger: true,
    });
    if (!answer.ok) return;
    await busy(
      button,
      async () => {
        await api("POST", `/api/staff/${account.id}/mfa/reset`);
        announce(t("staff.mfa_reset_done", names));
        await refresh();
        document.getElementById("staff-list-title").focus();
      },
      error,
    );
  });
  return button;
}

/** Whether this facility's officers must use two-step sign-in (administrators always do). */
function policyForm() {
  const box = el("input", { type: "checkbox", id: "staff-officer-mfa", checked: facility.officer_mfa_required });
  const error = el("p", { class: "error", id: "staff-policy-error", role: "alert", hidden: true });
  const submit = el("button", { type: "submit" }, t("staff.policy_save"));
  const form = el(
    "form",
    { id: "staff-policy", novalidate: true },
    el("label", { class: "inline", for: "staff-officer-mfa" }, box, t("staff.policy_officers")),
    el("div", { class: "actions" }, submit),
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    await busy(
      submit,
      async () => {
        const saved = await api("PATCH", `/api/facilities/${facility.id}`, {
          officer_mfa_required: box.checked,
        });
        facility.officer_mfa_required = saved.officer_mfa_required;
        announce(t(saved.officer_mfa_required ? "staff.policy_saved_on" : "staff.policy_saved_off"));
      },
      error,
    );
  });
  return el(
    "section",
    { "aria-labelledby": "staff-policy-title" },
    el("h2", { id: "staff-policy-title" }, t("staff.policy_title")),
    el("p", { class: "muted" }, t("staff.policy_lead")),
    form,
  );
}

function createForm() {
  const email = field(
    t("staff.email"),
    el("input", { type: "email", maxlength: 254, autocomplete: "off", required: true }),
  );
  const name = field(
    t("staff.name"),
    el("input", { type: "text", maxlength: 200, autocomplete: "off", required: true }),
  );
  const role = field(
    t("staff.role"),
    el(
      "select",
      {},
      ["officer", "facility_admin"].map((r) => el("option", { value: r }, t(`staff.role.${r}`))),
    ),
  );
  const password = field(
    t("staff.password"),
    el("input", { type: "text", minlength: MIN_PASSWORD, maxlength: 256, autocomplete: "off", required: true }),
    t("staff.password_hint", { min: MIN_PASSWORD }),
  );
  const error = el("p", { class: "error", id: "staff-create-error", role: "alert", hidden: true });
  const submit = el("button", { type: "submit", class: "primary" }, t("staff.create"));
  const form = el(
    "form",
    { id: "staff-create", novalidate: true },
    el("div", { class: "form-grid" }, email.wrap, name.wrap, role.wrap, password.wrap),
    el("div", { class: "actions" }, submit),
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const checks = [
      [email, !email.input.value.trim() || !email.input.validity.valid, "staff.email_invalid"],
      [name, !name.input.value.trim(), "staff.name_required"],
      [password, password.input.value.length < MIN_PASSWORD, "staff.password_short"],
    ];
    let first = null;
    for (const [item, bad, key] of checks) {
      item.setError(bad ? localError(key, { min: MIN_PASSWORD }) : null);
      if (bad && !first) first = item.input;
    }
    if (first) {
      first.focus();
      return;
    }
    await busy(
      submit,
      async () => {
        const created = await api("POST", "/api/staff", {
          email: email.input.value.trim(),
          name: name.input.value.trim(),
          role: role.input.value,
          facility_id: facility.id,
          password: password.input.value,
        });
        form.reset();
        announce(t("staff.created", { name: created.name, email: created.email }));
        await refresh();
      },
      error,
    );
  });
  return el(
    "section",
    { "aria-labelledby": "staff-create-title" },
    el("h2", { id: "staff-create-title" }, t("staff.add")),
    el("p", { class: "muted" }, t("staff.add_lead")),
    form,
  );
}
