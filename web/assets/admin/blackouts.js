// Blackouts: periods when the facility (or one unit) takes no visits. Times are entered in the
// facility's time zone; booked visits inside a new blackout are cancelled by the server.

import { announce, api, el, fmtDateTime, showError, t } from "/assets/core.js";
import { busy, confirmDialog, dataTable, field, localError, zonedToUtcIso } from "/assets/admin/common.js";

export function blackoutsSection(facility, units) {
  const tz = facility.timezone;
  const list = el("div", { id: "blackout-list", class: "table-wrap" });
  const showPast = el("input", { type: "checkbox", id: "blackouts-past" });
  const unitName = (id) => (id === null ? t("blackouts.whole_facility") : units.find((u) => u.id === id)?.name || String(id));

  async function refresh() {
    try {
      const rows = await api("GET", `/api/facilities/${facility.id}/blackouts?include_past=${showPast.checked}`);
      list.replaceChildren(
        rows.length
          ? dataTable(
              t("blackouts.caption", { tz }),
              [t("blackouts.starts"), t("blackouts.ends"), t("blackouts.where"), t("blackouts.reason"), t("blackouts.actions")],
              rows.map((b) => [
                fmtDateTime(b.starts_at, tz),
                fmtDateTime(b.ends_at, tz),
                unitName(b.unit_id),
                b.reason,
                removeButton(b),
              ]),
              "blackout-table",
            )
          : el("p", {}, t("blackouts.none")),
      );
    } catch (error) {
      const problem = el("p", { class: "error", role: "alert" });
      list.replaceChildren(problem);
      showError(problem, error);
    }
  }

  function removeButton(blackout) {
    const label = t("blackouts.remove_named", { when: fmtDateTime(blackout.starts_at, tz) });
    const button = el("button", { type: "button", class: "danger", "aria-label": label }, t("blackouts.remove"));
    const error = el("p", { class: "error", id: `blackout-${blackout.id}-error`, role: "alert", hidden: true });
    button.addEventListener("click", async () => {
      const answer = await confirmDialog({
        title: t("blackouts.remove_title"),
        message: t("blackouts.remove_message", {
          from: fmtDateTime(blackout.starts_at, tz),
          to: fmtDateTime(blackout.ends_at, tz),
        }),
        confirmLabel: t("blackouts.remove"),
        danger: true,
      });
      if (!answer.ok) return;
      await busy(
        button,
        async () => {
          await api("DELETE", `/api/blackouts/${blackout.id}`);
          announce(t("blackouts.removed"));
          await refresh();
          document.getElementById("blackouts-title").focus();
        },
        error,
      );
    });
    return el("div", {}, button, error);
  }

  const starts = field(t("blackouts.starts"), el("input", { type: "datetime-local" }), t("blackouts.time_hint", { tz }));
  const ends = field(t("blackouts.ends"), el("input", { type: "datetime-local" }), t("blackouts.time_hint", { tz }));
  const where = field(
    t("blackouts.where"),
    el(
      "select",
      {},
      el("option", { value: "" }, t("blackouts.whole_facility")),
      units.map((u) => el("option", { value: u.id }, u.name)),
    ),
  );
  const reason = field(
    t("blackouts.reason"),
    el("textarea", { rows: 2, maxlength: 2000 }),
    t("blackouts.reason_hint"),
  );
  const error = el("p", { class: "error", id: "blackout-create-error", role: "alert", hidden: true });
  const submit = el("button", { type: "submit", class: "primary" }, t("blackouts.add"));
  const form = el(
    "form",
    { id: "blackout-create", novalidate: true },
    el("div", { class: "form-grid" }, starts.wrap, ends.wrap, where.wrap),
    reason.wrap,
    el("div", { class: "actions" }, submit),
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const from = starts.input.value;
    const to = ends.input.value;
    const checks = [
      [starts, !from, "blackouts.need_start"],
      [ends, !to || (from && to <= from), to ? "blackouts.end_after_start" : "blackouts.need_end"],
      [reason, !reason.input.value.trim(), "blackouts.need_reason"],
    ];
    let first = null;
    for (const [item, bad, key] of checks) {
      item.setError(bad ? localError(key) : null);
      if (bad && !first) first = item.input;
    }
    if (first) {
      first.focus();
      return;
    }
    await busy(
      submit,
      async () => {
        const body = {
          starts_at: zonedToUtcIso(from, tz),
          ends_at: zonedToUtcIso(to, tz),
          reason: reason.input.value.trim(),
          unit_id: where.input.value ? Number(where.input.value) : null,
        };
        const result = await api("POST", `/api/facilities/${facility.id}/blackouts`, body);
        form.reset();
        announce(t("blackouts.added", { count: result.cancelled_visits }));
        await refresh();
      },
      error,
    );
  });

  showPast.addEventListener("change", refresh);
  refresh();
  return el(
    "section",
    { "aria-labelledby": "blackouts-title" },
    el("h2", { id: "blackouts-title", tabindex: "-1" }, t("blackouts.title")),
    el("p", { class: "muted" }, t("blackouts.lead")),
    el("label", { class: "inline", for: "blackouts-past" }, showPast, t("blackouts.show_past")),
    list,
    el("h3", {}, t("blackouts.add_title")),
    form,
  );
}
