// People in custody: search the roster, add a person (name, booking number, unit, PIN) and
// release one (their booked visits are cancelled and their visitors told by e-mail).

import { announce, api, el, showError, t } from "/assets/core.js";
import { busy, confirmDialog, dataTable, field, localError, startAdminPage } from "/assets/admin/common.js";

const BOOKING_PATTERN = /^[A-Za-z0-9][\w./-]*$/;
const PIN_PATTERN = /^[0-9]{4,8}$/;

const { facility } = await startAdminPage("people.title");
const main = document.getElementById("main");
let units = [];

if (facility) {
  units = await api("GET", `/api/facilities/${facility.id}/units`);
  const search = field(t("people.search"), el("input", { type: "search", maxlength: 100, autocomplete: "off" }), t("people.search_hint"));
  const searchForm = el(
    "form",
    { id: "people-search", role: "search", novalidate: true },
    search.wrap,
    el("button", { type: "submit" }, t("people.search_button")),
  );
  searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    refresh(search.input.value.trim());
  });
  main.append(
    el(
      "section",
      { "aria-labelledby": "people-list-title" },
      el("h2", { id: "people-list-title" }, t("people.list")),
      searchForm,
      el("p", { id: "people-error", class: "error", role: "alert", hidden: true }),
      el("div", { id: "people-list", class: "table-wrap" }),
    ),
    createForm(),
  );
  await refresh("");
}

function unitName(id) {
  return units.find((u) => u.id === id)?.name || String(id);
}

async function refresh(query) {
  const slot = document.getElementById("people-list");
  try {
    const params = new URLSearchParams({ status: "active", limit: "200" });
    if (query) params.set("q", query);
    const people = await api("GET", `/api/facilities/${facility.id}/persons?${params}`);
    slot.replaceChildren(
      people.length
        ? dataTable(
            t("people.caption", { name: facility.name }),
            [t("people.name"), t("people.booking"), t("people.unit"), t("people.pin"), t("people.actions")],
            people.map((p) => [
              `${p.first_name} ${p.last_name}`,
              p.booking_number,
              unitName(p.unit_id),
              p.has_pin ? t("common.yes") : t("common.no"),
              releaseButton(p, query),
            ]),
            "people-table",
          )
        : el("p", {}, t("people.none")),
    );
  } catch (error) {
    const problem = el("p", { class: "error", role: "alert" });
    slot.replaceChildren(problem);
    showError(problem, error);
  }
}

function releaseButton(person, query) {
  const name = `${person.first_name} ${person.last_name}`;
  const button = el("button", { type: "button", class: "danger", "aria-label": t("people.release_who", { name }) },
    t("people.release"));
  button.addEventListener("click", async () => {
    const answer = await confirmDialog({
      title: t("people.release_title", { name }),
      message: t("people.release_message"),
      confirmLabel: t("people.release"),
      danger: true,
      reasonLabel: t("people.release_reason"),
    });
    if (!answer.ok) return;
    const problem = document.getElementById("people-error");
    try {
      const change = await api("POST", `/api/persons/${person.id}/release`, { reason: answer.reason });
      announce(t("people.released", { name, count: change.cancelled_visits }));
      showError(problem, null);
      await refresh(query);
    } catch (error) {
      showError(problem, error);
    }
  });
  return button;
}

function createForm() {
  const first = field(t("people.first_name"), el("input", { type: "text", maxlength: 100, autocomplete: "off" }));
  const last = field(t("people.last_name"), el("input", { type: "text", maxlength: 100, autocomplete: "off" }));
  const booking = field(
    t("people.booking"),
    el("input", { type: "text", maxlength: 64, autocomplete: "off" }),
    t("people.booking_hint"),
  );
  const unit = field(t("people.unit"), el("select", {}, units.map((u) => el("option", { value: u.id }, u.name))));
  const pin = field(
    t("people.pin_optional"),
    el("input", { type: "text", inputmode: "numeric", maxlength: 8, autocomplete: "off" }),
    t("people.pin_hint"),
  );
  const error = el("p", { class: "error", id: "person-create-error", role: "alert", hidden: true });
  const submit = el("button", { type: "submit", class: "primary" }, t("people.add"));
  const form = el(
    "form",
    { id: "person-create", novalidate: true },
    el("div", { class: "form-grid" }, first.wrap, last.wrap, booking.wrap, unit.wrap, pin.wrap),
    el("div", { class: "actions" }, submit),
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const checks = [
      [first, !first.input.value.trim(), "people.need_first"],
      [last, !last.input.value.trim(), "people.need_last"],
      [booking, !BOOKING_PATTERN.test(booking.input.value.trim()), "people.bad_booking"],
      [pin, pin.input.value !== "" && !PIN_PATTERN.test(pin.input.value), "people.bad_pin"],
    ];
    let firstBad = null;
    for (const [item, bad, key] of checks) {
      item.setError(bad ? localError(key) : null);
      if (bad && !firstBad) firstBad = item.input;
    }
    if (firstBad) {
      firstBad.focus();
      return;
    }
    await busy(
      submit,
      async () => {
        const person = await api("POST", `/api/facilities/${facility.id}/persons`, {
          first_name: first.input.value.trim(),
          last_name: last.input.value.trim(),
          booking_number: booking.input.value.trim(),
          unit_id: Number(unit.input.value),
          pin: pin.input.value || null,
        });
        form.reset();
        announce(t("people.added", { name: `${person.first_name} ${person.last_name}` }));
        await refresh("");
      },
      error,
    );
  });
  return el(
    "section",
    { "aria-labelledby": "person-create-title" },
    el("h2", { id: "person-create-title" }, t("people.add_title")),
    units.length ? form : el("p", {}, t("kiosks.no_units")),
  );
}
