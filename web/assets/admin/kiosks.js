// Kiosks: list, register (the device token is shown once, with a setup link), rotate the
// credential (new token shown once) and revoke (disable) with a confirmation.

import { announce, api, el, fmtDateTime, showError, t } from "/assets/core.js";
import { busy, confirmDialog, dataTable, field, localError, startAdminPage } from "/assets/admin/common.js";

const KIOSK_ONLINE_MS = 90 * 1000;

const { facility } = await startAdminPage("kiosks.title");
const main = document.getElementById("main");
let units = [];

if (facility) {
  units = await api("GET", `/api/facilities/${facility.id}/units`);
  main.append(
    el("div", { id: "secret-slot" }),
    el(
      "section",
      { "aria-labelledby": "kiosk-list-title" },
      el("h2", { id: "kiosk-list-title", tabindex: "-1" }, t("kiosks.list")),
      el("div", { id: "kiosk-list", class: "table-wrap" }),
    ),
    createForm(),
  );
  await refresh();
}

function unitName(unitId) {
  return units.find((u) => u.id === unitId)?.name || String(unitId);
}

async function refresh() {
  const slot = document.getElementById("kiosk-list");
  try {
    const kiosks = await api("GET", `/api/facilities/${facility.id}/kiosks`);
    if (!kiosks.length) {
      slot.replaceChildren(el("p", {}, t("kiosks.none")));
      return;
    }
    slot.replaceChildren(
      dataTable(
        t("kiosks.caption", { name: facility.name }),
        [t("kiosks.name"), t("kiosks.unit"), t("kiosks.status"), t("kiosks.last_seen"), t("kiosks.actions")],
        kiosks.map((kiosk) => [
          kiosk.name,
          unitName(kiosk.unit_id),
          statusBadge(kiosk),
          kiosk.last_seen_at ? fmtDateTime(kiosk.last_seen_at, facility.timezone) : t("kiosks.never"),
          kioskActions(kiosk),
        ]),
        "kiosk-table",
      ),
    );
  } catch (error) {
    const problem = el("p", { class: "error", role: "alert" });
    slot.replaceChildren(problem);
    showError(problem, error);
  }
}

function statusBadge(kiosk) {
  if (!kiosk.enabled) return el("span", { class: "badge bad" }, t("kiosks.revoked"));
  const online = kiosk.last_seen_at && Date.now() - Date.parse(kiosk.last_seen_at) <= KIOSK_ONLINE_MS;
  return online
    ? el("span", { class: "badge ok" }, t("kiosks.online"))
    : el("span", { class: "badge warn" }, t("kiosks.offline"));
}

function kioskActions(kiosk) {
  const error = el("p", { class: "error", id: `kiosk-${kiosk.id}-error`, role: "alert", hidden: true });
  const names = { name: kiosk.name };
  const rotate = el(
    "button",
    { type: "button", "aria-label": t("kiosks.rotate_named", names) },
    t("kiosks.rotate"),
  );
  rotate.addEventListener("click", async () => {
    const answer = await confirmDialog({
      title: t("kiosks.rotate_title", names),
      message: t("kiosks.rotate_message"),
      confirmLabel: t("kiosks.rotate"),
    });
    if (!answer.ok) return;
    await busy(
      rotate,
      async () => {
        const result = await api("POST", `/api/kiosks/${kiosk.id}/rotate`);
        showSecret(result, "kiosks.rotated_title");
        await refresh();
      },
      error,
    );
  });
  const toggle = kiosk.enabled
    ? el("button", { type: "button", class: "danger", "aria-label": t("kiosks.revoke_named", names) }, t("kiosks.revoke"))
    : el("button", { type: "button", "aria-label": t("kiosks.enable_named", names) }, t("kiosks.enable"));
  toggle.addEventListener("click", async () => {
    if (kiosk.enabled) {
      const answer = await confirmDialog({
        title: t("kiosks.revoke_title", names),
        message: t("kiosks.revoke_message"),
        confirmLabel: t("kiosks.revoke"),
        danger: true,
      });
      if (!answer.ok) return;
    }
    await busy(
      toggle,
      async () => {
        await api("PATCH", `/api/kiosks/${kiosk.id}`, { enabled: !kiosk.enabled });
        announce(t(kiosk.enabled ? "kiosks.revoked_done" : "kiosks.enabled_done", names));
        await refresh();
        document.getElementById("kiosk-list-title").focus();
      },
      error,
    );
  });
  return el("div", {}, el("div", { class: "row" }, rotate, toggle), error);
}

/** The token is shown here once; nothing keeps it after the admin closes the panel. */
function showSecret(result, titleKey) {
  const slot = document.getElementById("secret-slot");
  const link = `${location.origin}/kiosk/#token=${encodeURIComponent(result.token)}`;
  const tokenInput = el("input", { type: "text", readonly: true, value: result.token, id: "kiosk-token" });
  const linkInput = el("input", { type: "text", readonly: true, value: link, id: "kiosk-link" });
  const copied = el("p", { class: "ok", id: "kiosk-copied", hidden: true });
  const copyButton = (input, doneKey) => {
    const button = el("button", { type: "button" }, t("kiosks.copy"));
    button.setAttribute("aria-label", t(`${doneKey}_label`));
    button.addEventListener("click", () => {
      input.select();
      let ok = false;
      try {
        ok = document.execCommand("copy");
      } catch (ignored) {
        ok = false;
      }
      if (!ok && navigator.clipboard) {
        navigator.clipboard.writeText(input.value).catch(() => {});
      }
      const message = ok ? t(doneKey) : t("kiosks.copy_manually");
      copied.textContent = message;
      copied.hidden = false;
      announce(message);
    });
    return button;
  };
  const done = el("button", { type: "button", class: "primary" }, t("kiosks.secret_done"));
  const panel = el(
    "section",
    { class: "secret", id: "kiosk-secret", "aria-labelledby": "secret-title", tabindex: "-1" },
    el("h2", { id: "secret-title" }, t(titleKey, { name: result.kiosk.name })),
    el("p", {}, t("kiosks.secret_once")),
    el("label", { for: "kiosk-link" }, t("kiosks.setup_link")),
    el("div", { class: "row" }, linkInput, copyButton(linkInput, "kiosks.link_copied")),
    el("label", { for: "kiosk-token" }, t("kiosks.token")),
    el("div", { class: "row" }, tokenInput, copyButton(tokenInput, "kiosks.token_copied")),
    copied,
    done,
  );
  done.addEventListener("click", () => {
    panel.remove();
    document.getElementById("kiosk-list-title").focus();
  });
  slot.replaceChildren(panel);
  panel.focus();
  announce(t(titleKey, { name: result.kiosk.name }));
}

function createForm() {
  const name = field(t("kiosks.name"), el("input", { type: "text", maxlength: 200, autocomplete: "off" }), t("kiosks.name_hint"));
  const unit = field(
    t("kiosks.unit"),
    el("select", {}, units.map((u) => el("option", { value: u.id }, u.name))),
  );
  const error = el("p", { class: "error", id: "kiosk-create-error", role: "alert", hidden: true });
  const submit = el("button", { type: "submit", class: "primary" }, t("kiosks.create"));
  const form = el(
    "form",
    { id: "kiosk-create", novalidate: true },
    name.wrap,
    unit.wrap,
    el("div", { class: "actions" }, submit),
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    name.setError(null);
    if (!name.input.value.trim()) {
      name.setError(localError("kiosks.name_required"));
      name.input.focus();
      return;
    }
    await busy(
      submit,
      async () => {
        const result = await api("POST", `/api/facilities/${facility.id}/kiosks`, {
          name: name.input.value.trim(),
          unit_id: Number(unit.input.value),
        });
        form.reset();
        showSecret(result, "kiosks.created_title");
        await refresh();
      },
      error,
    );
  });
  return el(
    "section",
    { "aria-labelledby": "kiosk-create-title" },
    el("h2", { id: "kiosk-create-title" }, t("kiosks.add")),
    units.length ? form : el("p", {}, t("kiosks.no_units")),
  );
}
