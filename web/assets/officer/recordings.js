// Recordings search: person, visitor, kiosk, date range -> a table with playback and export.

import { api, el, fmtDateTime, fmtDuration, initPage, showError, t } from "/assets/core.js";
import { STAFF_ROLES, chooseFacility } from "./common.js";
import { holdControl } from "./holds.js";

const PAGE_SIZE = 50;
const $ = (id) => document.getElementById(id);
const state = { facilityId: null, timezone: undefined, offset: 0, total: 0, facilities: [] };

function fillSelect(select, options) {
  const any = select.options[0];
  select.replaceChildren(any, ...options.map(([value, label]) => el("option", { value }, label)));
}

async function loadChoices() {
  const fid = state.facilityId;
  state.timezone = state.facilities.find((f) => f.id === fid)?.timezone;
  if (!fid) return;
  const [persons, kiosks, visits] = await Promise.all([
    api("GET", `/api/facilities/${fid}/persons?limit=200`),
    api("GET", `/api/facilities/${fid}/kiosks`),
    api("GET", `/api/visits?facility_id=${fid}&limit=500`),
  ]);
  fillSelect(
    $("person"),
    persons
      .sort((a, b) => a.last_name.localeCompare(b.last_name))
      .map((p) => [p.id, `${p.last_name}, ${p.first_name} (${p.booking_number})`]),
  );
  fillSelect($("kiosk"), kiosks.map((k) => [k.id, k.name]));
  const visitors = new Map(visits.map((v) => [v.visitor_id, v.visitor_name]));
  fillSelect(
    $("visitor"),
    [...visitors].sort((a, b) => a[1].localeCompare(b[1])).map(([id, name]) => [id, name]),
  );
}

function query() {
  const params = new URLSearchParams();
  if (state.facilityId) params.set("facility_id", state.facilityId);
  for (const [id, name] of [["person", "person_id"], ["visitor", "visitor_id"], ["kiosk", "kiosk_id"]]) {
    if ($(id).value) params.set(name, $(id).value);
  }
  if ($("date-from").value) params.set("date_from", $("date-from").value);
  if ($("date-to").value) params.set("date_to", $("date-to").value);
  if ($("hold-filter").value) params.set("legal_hold", $("hold-filter").value);
  params.set("limit", PAGE_SIZE);
  params.set("offset", state.offset);
  return params;
}

function resultRow(item) {
  const play = `/officer/playback?visit_id=${item.visit_id}`;
  const who = `${item.person.name} (${item.person.booking_number})`;
  return el(
    "tr",
    {},
    el("td", {}, fmtDateTime(item.starts_at, state.timezone)),
    el("td", {}, who),
    el("td", {}, item.visitor.name),
    el("td", {}, item.kiosk.name),
    el("td", {}, fmtDuration(item.duration_s)),
    el("td", {}, String(item.flags)),
    el("td", {}, holdControl({
      visitId: item.visit_id,
      active: item.legal_hold,
      label: `${who}, ${fmtDateTime(item.starts_at, state.timezone)}`,
      onChange: () => search(),
    })),
    el(
      "td",
      {},
      el(
        "a",
        { class: "button", href: play, "aria-label": t("officer.rec.playLabel", { who, visitor: item.visitor.name }) },
        t("officer.rec.play"),
      ),
      el(
        "a",
        {
          class: "button",
          href: `/api/visits/${item.visit_id}/evidence.zip`,
          download: `visit-${item.visit_id}-evidence.zip`,
          "aria-label": t("officer.rec.exportLabel", { who, visitor: item.visitor.name }),
        },
        t("officer.rec.export"),
      ),
    ),
  );
}

async function search() {
  const dateFrom = $("date-from");
  const dateTo = $("date-to");
  if (dateFrom.value && dateTo.value && dateFrom.value > dateTo.value) {
    $("search-error").textContent = t("officer.rec.badRange");
    $("search-error").hidden = false;
    dateTo.setAttribute("aria-invalid", "true");
    dateTo.setAttribute("aria-describedby", "search-error");
    dateTo.focus();
    return;
  }
  dateTo.removeAttribute("aria-invalid");
  dateTo.removeAttribute("aria-describedby");
  showError("search-error", null);
  $("results-count").textContent = t("common.loading");
  try {
    const result = await api("GET", `/api/recordings?${query()}`);
    state.total = result.total;
    $("result-rows").replaceChildren(...result.items.map(resultRow));
    $("results").hidden = result.items.length === 0;
    $("results-count").textContent = result.total
      ? t("officer.rec.count", {
          from: state.offset + 1,
          to: state.offset + result.items.length,
          total: result.total,
        })
      : t("officer.rec.none");
    $("pager").hidden = result.total <= PAGE_SIZE;
    $("page-prev").disabled = state.offset === 0;
    $("page-next").disabled = state.offset + PAGE_SIZE >= result.total;
  } catch (error) {
    $("results-count").textContent = "";
    showError("search-error", error);
  }
}

async function main() {
  const session = await initPage({ area: "officer", titleKey: "officer.rec.title", roles: STAFF_ROLES });
  try {
    const choice = await chooseFacility(session, $("facility-picker"), async (id) => {
      state.facilityId = id;
      state.offset = 0;
      await loadChoices();
      await search();
    });
    state.facilityId = choice.facilityId;
    state.facilities = choice.facilities;
    await loadChoices();
  } catch (error) {
    showError("search-error", error);
  }
  $("search").addEventListener("submit", (event) => {
    event.preventDefault();
    state.offset = 0;
    search();
  });
  $("page-prev").addEventListener("click", () => {
    state.offset = Math.max(0, state.offset - PAGE_SIZE);
    search();
  });
  $("page-next").addEventListener("click", () => {
    state.offset += PAGE_SIZE;
    search();
  });
  await search();
}

main();
