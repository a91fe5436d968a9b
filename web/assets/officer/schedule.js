// The facility's schedule for a day (today by default, in the facility's time zone).

import { api, el, fmtDate, fmtTime, initPage, showError, t } from "/assets/core.js";
import { STAFF_ROLES, chooseFacility, stateText } from "./common.js";

const $ = (id) => document.getElementById(id);
const state = { facilityId: null, facilities: [], timezone: undefined };

/** YYYY-MM-DD of now in a time zone. */
function localToday(timeZone) {
  const parts = new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" })
    .formatToParts(new Date());
  const get = (type) => parts.find((part) => part.type === type).value;
  return `${get("year")}-${get("month")}-${get("day")}`;
}

function row(visit) {
  const tz = visit.timezone;
  return el(
    "tr",
    { dataset: { visitId: String(visit.id) } },
    el("td", {}, `${fmtTime(visit.start_utc, tz)} – ${fmtTime(visit.end_utc, tz)}`),
    el("td", {}, visit.person_name),
    el("td", {}, visit.visitor_name),
    el("td", {}, `${visit.kiosk_name} (${visit.unit_name})`),
    el(
      "td",
      {},
      stateText(visit.state, visit.start_utc, visit.end_utc),
      visit.privileged ? el("span", { class: "badge warn" }, t("officer.schedule.privileged")) : null,
    ),
  );
}

async function load() {
  const day = $("day");
  if (!day.value) {
    $("schedule-error").textContent = t("officer.schedule.pickDay");
    $("schedule-error").hidden = false;
    day.setAttribute("aria-invalid", "true");
    day.setAttribute("aria-describedby", "schedule-error");
    return;
  }
  day.removeAttribute("aria-invalid");
  day.removeAttribute("aria-describedby");
  showError("schedule-error", null);
  try {
    const params = new URLSearchParams({ date: day.value, limit: "500" });
    if (state.facilityId) params.set("facility_id", state.facilityId);
    const visits = await api("GET", `/api/visits?${params}`);
    visits.sort((a, b) => Date.parse(a.start_utc) - Date.parse(b.start_utc) || a.id - b.id);
    $("schedule-rows").replaceChildren(...visits.map(row));
    $("schedule").hidden = visits.length === 0;
    const when = fmtDate(`${day.value}T12:00:00Z`, "UTC");
    $("schedule-caption").textContent = t("officer.schedule.caption", { day: when });
    $("schedule-count").textContent = visits.length
      ? t("officer.schedule.count", { count: visits.length, day: when })
      : t("officer.schedule.none", { day: when });
  } catch (error) {
    showError("schedule-error", error);
  }
}

function seriesRow(series) {
  const next = series.state === "active"
    ? fmtDate(series.next_start_utc, series.timezone)
    : "—";
  return el(
    "tr",
    { dataset: { seriesId: String(series.id) } },
    el("td", {}, t("officer.series.every", { day: t(`officer.series.day.${series.weekday}`), time: series.time })),
    el("td", {}, series.person_name),
    el("td", {}, series.visitor_name),
    el("td", {}, t(`officer.series.state.${series.state}`)),
    el("td", {}, next),
  );
}

async function loadSeries() {
  try {
    const params = new URLSearchParams();
    if (state.facilityId) params.set("facility_id", state.facilityId);
    const list = await api("GET", `/api/series?${params}`);
    $("series-rows").replaceChildren(...list.map(seriesRow));
    $("series").hidden = list.length === 0;
    $("series-count").textContent = list.length
      ? t("officer.series.count", { count: list.length })
      : t("officer.series.none");
  } catch (error) {
    showError("schedule-error", error);
  }
}

async function main() {
  const session = await initPage({ area: "officer", titleKey: "officer.schedule.title", roles: STAFF_ROLES });
  try {
    const choice = await chooseFacility(session, $("facility-picker"), (id) => {
      state.facilityId = id;
      state.timezone = state.facilities.find((f) => f.id === id)?.timezone;
      $("day").value = localToday(state.timezone);
      load();
      loadSeries();
    });
    state.facilityId = choice.facilityId;
    state.facilities = choice.facilities;
    state.timezone = choice.facilities.find((f) => f.id === choice.facilityId)?.timezone;
  } catch (error) {
    showError("schedule-error", error);
  }
  $("day").value = localToday(state.timezone);
  $("day-form").addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  await load();
  await loadSeries();
}

main();
