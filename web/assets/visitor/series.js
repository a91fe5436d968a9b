// /visitor/series: standing weekly visits — ask for "every Sunday at 14:00" with a person, see
// what each week got (booked, or skipped with the nearest free times), pause, resume, cancel.
import { announce, api, el, fmtDate, initPage, showError, t } from "/assets/core.js";
import { bothTimes } from "/assets/visitor/common.js";

await initPage({ area: "visitor", titleKey: "series.title", roles: ["visitor"] });

const errorBox = document.getElementById("series-error");
const personSelect = document.getElementById("series-person");
const weekdaySelect = document.getElementById("series-weekday");
const timeInput = document.getElementById("series-time");

function weekdayName(weekday) {
  return t(`series.day.${weekday}`);
}

function occurrence(series, occ) {
  const when = bothTimes(occ.start_utc, series.timezone);
  if (occ.outcome === "booked") {
    const state = occ.visit_state && occ.visit_state !== "scheduled" && occ.visit_state !== "ready"
      ? ` (${t(`state.${occ.visit_state}`)})` : "";
    return el("li", { class: "occurrence booked" }, t("series.booked", { when }), state);
  }
  const reasonKey = `series.reason.${occ.reason_code}`;
  const reason = t(reasonKey) === reasonKey ? (occ.reason || occ.reason_code) : t(reasonKey);
  const children = [el("p", {}, t("series.skipped", { when }), " ", reason)];
  if (occ.alternatives.length) {
    children.push(el("p", {}, t("series.nearest")),
      el("ul", {}, ...occ.alternatives.map((slot) =>
        el("li", {}, bothTimes(slot.start_utc, series.timezone)))),
      el("p", {}, el("a", { href: "/visitor/book" }, t("series.book_other"))));
  } else {
    children.push(el("p", { class: "muted" }, t("series.nothing_near")));
  }
  return el("li", { class: "occurrence skipped" }, ...children);
}

async function act(series, action) {
  try {
    await api("POST", `/api/series/${series.id}/${action}`, {});
    announce(t(`series.done.${action}`));
    await render();
    document.getElementById("series-list-title").focus();
  } catch (error) {
    showError(errorBox, error);
  }
}

function item(series) {
  const title = `series-${series.id}-title`;
  const children = [
    el("h3", { id: title }, t("series.with", { person: series.person_name })),
    el("p", {}, t("series.every", { day: weekdayName(series.weekday), time: series.time,
      zone: series.timezone }), " ",
    el("span", { class: `badge ${series.state === "active" ? "ok" : series.state === "paused" ? "warn" : "bad"}` },
      t(`series.state.${series.state}`))),
    el("p", { class: "muted" }, series.facility_name),
  ];
  if (series.state === "active" && series.books_at) {
    children.push(el("p", { class: "hint" }, t("series.next", {
      day: fmtDate(series.next_start_utc, series.timezone),
      when: bothTimes(series.books_at, series.timezone),
    })));
  }
  if (series.end_reason && series.state === "ended") {
    children.push(el("p", { class: "notice" }, t("series.ended_why", { reason: series.end_reason })));
  }
  if (series.occurrences.length) {
    children.push(el("ul", { class: "occurrences", "aria-label": t("series.weeks") },
      ...series.occurrences.map((occ) => occurrence(series, occ))));
  }
  const actions = el("p", { class: "row" });
  const button = (action, cls = "") => el("button", { type: "button", class: cls,
    "aria-describedby": title, onclick: () => act(series, action) }, t(`series.${action}`));
  if (series.state === "active") actions.append(button("pause"));
  if (series.state === "paused") actions.append(button("resume", "primary"));
  if (series.state === "active" || series.state === "paused") actions.append(button("cancel", "danger"));
  children.push(actions);
  return el("li", { dataset: { seriesId: String(series.id) } }, ...children);
}

async function render() {
  const list = await api("GET", "/api/series?include_closed=true");
  document.getElementById("series-list").replaceChildren(...list.map(item));
  document.getElementById("series-none").hidden = list.length > 0;
}

async function setUp() {
  for (let day = 0; day < 7; day += 1) {
    weekdaySelect.append(el("option", { value: String(day) }, weekdayName(day)));
  }
  weekdaySelect.value = "6";
  const approvals = (await api("GET", "/api/approvals?status=approved"))
    .filter((a) => a.status === "approved");
  const seen = new Set();
  for (const a of approvals) {
    if (seen.has(a.person.id)) continue;
    seen.add(a.person.id);
    personSelect.append(el("option", { value: String(a.person.id) },
      t("book.person_option", { name: `${a.person.first_name} ${a.person.last_name}`,
        facility: a.facility_name })));
  }
  document.getElementById("series-no-person").hidden = seen.size > 0;
}

document.getElementById("series-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError(errorBox, null, timeInput);
  if (!timeInput.value) {
    showError(errorBox, { code: "invalid_time" }, timeInput);
    errorBox.textContent = t("series.pick_time");
    return;
  }
  try {
    const created = await api("POST", "/api/series", {
      person_id: Number(personSelect.value),
      weekday: Number(weekdaySelect.value),
      time: timeInput.value.slice(0, 5),
    });
    announce(t("series.created", { person: created.person_name }));
    await render();
    document.getElementById("series-list-title").focus();
  } catch (error) {
    showError(errorBox, error, timeInput);
    errorBox.focus();
  }
});

try {
  await setUp();
  await render();
} catch (error) {
  showError(errorBox, error);
}
