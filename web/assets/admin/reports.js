// Reports: visits per day (stacked bars by outcome), no-show rate, average connected minutes,
// lost minutes and contact regularity per person in custody (visits per month), each chart
// followed by its data table.

import { announce, api, el, lang, showError, t } from "/assets/core.js";
import { addDays, busy, dataTable, dateIn, field, localError, startAdminPage } from "/assets/admin/common.js";
import { heatGrid, stackedBarChart, swatch } from "/assets/admin/charts.js";

const DEFAULT_DAYS = 30;
const MAX_DAYS = 366;
const OUTCOMES = ["completed", "terminated", "failed", "no_show", "cancelled"];

const { facility } = await startAdminPage("reports.title");
const main = document.getElementById("main");

if (facility) {
  const today = dateIn(facility.timezone);
  const from = field(t("reports.date_from"), el("input", { type: "date", value: addDays(today, -(DEFAULT_DAYS - 1)) }));
  const to = field(t("reports.date_to"), el("input", { type: "date", value: today }));
  const submit = el("button", { type: "submit", class: "primary" }, t("reports.show"));
  const error = el("p", { class: "error", id: "reports-error", role: "alert", hidden: true });
  const form = el(
    "form",
    { id: "reports-range", novalidate: true },
    el("div", { class: "filters" }, from.wrap, to.wrap),
    el("div", { class: "actions" }, submit),
    error,
  );
  const output = el("div", { id: "report" });
  main.append(
    el("p", { class: "muted" }, t("reports.lead", { tz: facility.timezone })),
    el("section", { "aria-labelledby": "range-title" }, el("h2", { id: "range-title" }, t("reports.range")), form),
    output,
  );
  const run = async () => {
    const bad = !from.input.value || !to.input.value || from.input.value > to.input.value;
    to.setError(bad ? localError("reports.range_invalid") : null);
    if (bad) {
      to.input.focus();
      return;
    }
    const days = (Date.parse(to.input.value) - Date.parse(from.input.value)) / 86400000 + 1;
    if (days > MAX_DAYS) {
      to.setError(localError("reports.range_too_long", { days: MAX_DAYS }));
      to.input.focus();
      return;
    }
    await busy(
      submit,
      async () => {
        const query = new URLSearchParams({ date_from: from.input.value, date_to: to.input.value });
        const report = await api("GET", `/api/facilities/${facility.id}/reports?${query}`);
        renderReport(output, report);
        announce(t("reports.ready"));
      },
      error,
    );
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run();
  });
  await run();
}

function percent(rate) {
  if (rate === null || rate === undefined) return t("reports.no_data");
  return new Intl.NumberFormat(lang(), { style: "percent", maximumFractionDigits: 1 }).format(rate);
}

function minutes(value) {
  if (value === null || value === undefined) return t("reports.no_data");
  return t("reports.minutes", { value: new Intl.NumberFormat(lang(), { maximumFractionDigits: 1 }).format(value) });
}

function shortDate(iso) {
  const [y, m, d] = iso.split("-").map(Number);
  return new Intl.DateTimeFormat(lang(), { month: "numeric", day: "numeric", timeZone: "UTC" }).format(
    new Date(Date.UTC(y, m - 1, d)),
  );
}

function longDate(iso) {
  const [y, m, d] = iso.split("-").map(Number);
  return new Intl.DateTimeFormat(lang(), { dateStyle: "medium", timeZone: "UTC" }).format(new Date(Date.UTC(y, m - 1, d)));
}

function monthName(month) {
  const [y, m] = month.split("-").map(Number);
  return new Intl.DateTimeFormat(lang(), { month: "short", year: "numeric", timeZone: "UTC" }).format(
    new Date(Date.UTC(y, m - 1, 1)),
  );
}

function renderReport(output, report) {
  output.replaceChildren(summarySection(report), perDaySection(report), regularitySection(report));
}

function summarySection(report) {
  const item = (name, label, value, hint) =>
    el("div", { class: "stat", dataset: { stat: name } }, el("dt", {}, label), el("dd", {}, value), el("dd", { class: "hint" }, hint));
  return el(
    "section",
    { "aria-labelledby": "summary-title" },
    el("h2", { id: "summary-title" }, t("reports.summary", { from: longDate(report.date_from), to: longDate(report.date_to) })),
    el(
      "dl",
      { class: "stats" },
      item("no_show_rate", t("reports.no_show_rate"), percent(report.no_show_rate), t("reports.no_show_rate_hint")),
      item("avg_connected", t("reports.avg_connected"), minutes(report.avg_connected_minutes), t("reports.avg_connected_hint")),
      item("lost", t("reports.lost"), minutes(report.lost_minutes), t("reports.lost_hint")),
    ),
  );
}

function perDaySection(report) {
  const series = OUTCOMES.map((key) => ({ key, label: t(`reports.outcome.${key}`) }));
  const days = report.visits_per_day;
  const total = days.reduce((sum, d) => sum + d.booked, 0);
  const chart = stackedBarChart({
    id: "chart-visits-per-day",
    title: t("reports.per_day_chart", { count: total }),
    description: t("reports.per_day_desc"),
    rows: days.map((d) => ({ label: longDate(d.date), short: shortDate(d.date), values: d })),
    series,
  });
  const legend = el(
    "ul",
    { class: "legend", "aria-label": t("reports.legend") },
    series.map((s) => el("li", {}, swatch(`bar-${s.key}`), s.label)),
  );
  const table = dataTable(
    t("reports.per_day_table"),
    [t("reports.day"), t("reports.booked"), ...series.map((s) => s.label)],
    days.map((d) => [longDate(d.date), String(d.booked), ...OUTCOMES.map((k) => String(d[k]))]),
    "per-day-table",
  );
  table.id = "table-visits-per-day";
  return el(
    "section",
    { "aria-labelledby": "per-day-title" },
    el("h2", { id: "per-day-title" }, t("reports.per_day")),
    total
      ? [el("figure", { class: "chart" }, chart, legend), el("div", { class: "table-wrap" }, table)]
      : el("p", {}, t("reports.no_visits")),
  );
}

function regularitySection(report) {
  const people = report.contact_regularity;
  const months = [...new Set(people.flatMap((p) => p.months.map((m) => m.month)))].sort();
  const counts = people.map((p) => months.map((month) => p.months.find((m) => m.month === month)?.visits || 0));
  const label = (p) => `${p.name} (${p.booking_number})`;
  const content = [];
  if (people.length && months.length) {
    content.push(
      el(
        "figure",
        { class: "chart" },
        heatGrid({
          id: "chart-regularity",
          title: t("reports.regularity_chart"),
          description: t("reports.regularity_desc"),
          rows: people.map((p, i) => ({ label: label(p), cells: counts[i] })),
          columns: months.map(monthName),
        }),
      ),
    );
    const table = dataTable(
      t("reports.regularity_table"),
      [t("reports.person"), ...months.map(monthName)],
      people.map((p, i) => [label(p), ...counts[i].map(String)]),
      "regularity-table",
    );
    table.id = "table-regularity";
    content.push(el("div", { class: "table-wrap" }, table));
  } else {
    content.push(el("p", {}, t("reports.no_regularity")));
  }
  return el(
    "section",
    { "aria-labelledby": "regularity-title" },
    el("h2", { id: "regularity-title" }, t("reports.regularity")),
    el("p", { class: "muted" }, t("reports.regularity_lead")),
    content,
  );
}
