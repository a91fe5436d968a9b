// /visitor/book: pick an approved person and a day, see that day's free slots (facility time
// and the visitor's own), confirm one to book it. Also rebooks a credited visit (?rebook=ID) and reschedules one (?reschedule=ID).
import { ApiError, announce, api, el, errorText, fmtDate, fmtTime, initPage, showError, t } from "/assets/core.js";
import { bothTimes, ownZone, queryId } from "/assets/visitor/common.js";

const DAYS_SHOWN = 7;
// Someone else got there first (the kiosks, or the person, are busy at that time now).
const TAKEN = new Set(["slot_taken", "person_busy"]);
await initPage({ area: "visitor", titleKey: "book.title", roles: ["visitor"] });

const personSelect = document.getElementById("book-person");
const fromInput = document.getElementById("book-from");
const slotsBox = document.getElementById("slots");
const daysBox = document.getElementById("days");
const dayList = document.getElementById("day-list");
const confirmBox = document.getElementById("confirm");
const slotsStatus = document.getElementById("slots-status");
const errorBox = document.getElementById("book-error");
const rebookId = queryId("rebook");
const rescheduleId = queryId("reschedule");
let timezone = null;
// The first list starts a day early: the facility's "today" may still be the visitor's yesterday.
// Once the facility's time zone is known, the days start at the facility's today.
let startsAtFacilityToday = false;
// The slots of the shown days by facility-local date, the day shown, and the slot being confirmed.
let slotsByDay = new Map();
let chosenDay = null;
let pending = null;

function todayIn(zone) {
  return new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric", month: "2-digit",
    day: "2-digit" }).format(new Date());
}

function isoDate(date) {
  return date.toISOString().slice(0, 10);
}

function addDays(day, days) {
  const date = new Date(`${day}T12:00:00Z`);
  date.setUTCDate(date.getUTCDate() + days);
  return isoDate(date);
}

async function setUp() {
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
  const fixed = rebookId ?? rescheduleId;
  if (fixed !== null) {
    const visit = await api("GET", `/api/visits/${fixed}`);
    const mode = document.getElementById("book-mode");
    mode.textContent = t(rebookId !== null ? "book.mode_rebook" : "book.mode_reschedule",
      { person: visit.person_name, time: bothTimes(visit.start_utc, visit.timezone) });
    mode.hidden = false;
    document.getElementById("book-title").textContent =
      t(rebookId !== null ? "book.title_rebook" : "book.title_reschedule");
    personSelect.value = String(visit.person_id);
    personSelect.disabled = true;
    document.getElementById("minors-box").hidden = true;
  } else if (queryId("person_id") !== null) {
    personSelect.value = String(queryId("person_id"));
  }
  if (!personSelect.options.length) {
    document.getElementById("book-no-person").hidden = false;
    personSelect.disabled = true;
    return false;
  }
  fromInput.value = addDays(todayIn(ownZone()), -1);
  fromInput.min = fromInput.value;
  startsAtFacilityToday = true;
  return true;
}

function slotSpan(slot, zone) {
  return `${fmtTime(slot.start_utc, zone)} – ${fmtTime(slot.end_utc, zone)}`;
}

function slotButton(slot) {
  const own = ownZone();
  const children = [el("span", {}, slotSpan(slot, timezone))];
  if (own !== timezone) {
    children.push(el("span", { class: "slot-own" }, t("time.own", { time: slotSpan(slot, own) })));
  }
  return el("li", {}, el("button", { type: "button", onclick: () => askToConfirm(slot) }, ...children));
}

function dayButton(day, slots) {
  const pressed = day === chosenDay;
  return el("li", {}, el("button", {
    type: "button",
    "aria-pressed": pressed ? "true" : "false",
    disabled: slots.length === 0,
    onclick: () => showDay(day),
  }, el("span", {}, fmtDate(`${day}T12:00:00Z`, "UTC")),
  el("span", { class: "day-count" },
    slots.length ? t("book.day_count", { count: slots.length }) : t("book.day_none"))));
}

/** One day's slots; the day buttons above say which day is shown. */
function showDay(day) {
  chosenDay = day;
  dayList.replaceChildren(...[...slotsByDay].map(([d, slots]) => dayButton(d, slots)));
  const slots = slotsByDay.get(day) || [];
  slotsBox.replaceChildren();
  if (!slots.length) return;
  const heading = `slot-day-${day}`;
  slotsBox.append(el("section", { class: "slot-day", "aria-labelledby": heading },
    el("h3", { id: heading }, fmtDate(slots[0].start_utc, timezone)),
    el("ul", { class: "slot-list" }, slots.map(slotButton))));
}

/** The confirm step: the chosen time in the facility's and the visitor's zones. */
function askToConfirm(slot) {
  errorBox.hidden = true;
  pending = slot;
  const own = ownZone();
  const person = personSelect.selectedOptions[0]?.textContent || "";
  document.getElementById("confirm-person").textContent = t("book.confirm_person", { person });
  document.getElementById("confirm-when").textContent = t("book.confirm_when", {
    date: fmtDate(slot.start_utc, timezone), time: slotSpan(slot, timezone), zone: timezone });
  const ownLine = document.getElementById("confirm-own");
  ownLine.textContent = own === timezone ? ""
    : t("book.confirm_own", { time: `${fmtDate(slot.start_utc, own)}, ${slotSpan(slot, own)}`, zone: own });
  ownLine.hidden = own === timezone;
  slotsBox.closest("section").hidden = true;
  confirmBox.hidden = false;
  document.getElementById("confirm-title").focus();
}

function backToSlots() {
  pending = null;
  confirmBox.hidden = true;
  slotsBox.closest("section").hidden = false;
  document.getElementById("slots-title").focus();
}

document.getElementById("confirm-back").addEventListener("click", backToSlots);
document.getElementById("confirm-book").addEventListener("click", () => {
  if (pending) book(pending);
});

async function loadSlots() {
  errorBox.hidden = true;
  slotsBox.replaceChildren();
  dayList.replaceChildren();
  if (!personSelect.value || !fromInput.value) return;
  slotsStatus.textContent = t("common.loading");
  const from = fromInput.value;
  const to = addDays(from, DAYS_SHOWN - 1);
  try {
    const result = await api("GET",
      `/api/persons/${personSelect.value}/availability?from=${from}&to=${to}`);
    timezone = result.timezone;
    if (startsAtFacilityToday) {
      startsAtFacilityToday = false;
      const today = todayIn(timezone);
      fromInput.min = today;
      if (fromInput.value !== today) {
        fromInput.value = today;
        return loadSlots();
      }
    }
    const own = ownZone();
    document.getElementById("book-zone").textContent = own === timezone
      ? t("book.zone_same", { zone: timezone })
      : t("book.zone", { zone: timezone, own });
    slotsByDay = new Map();
    for (let i = 0; i < DAYS_SHOWN; i += 1) slotsByDay.set(addDays(from, i), []);
    for (const slot of result.slots) {
      const day = slot.start.slice(0, 10);
      if (!slotsByDay.has(day)) slotsByDay.set(day, []);
      slotsByDay.get(day).push(slot);
    }
    const firstFree = [...slotsByDay].find(([, slots]) => slots.length)?.[0] ?? null;
    daysBox.hidden = result.slots.length === 0;
    // Keep the day the visitor was looking at (e.g. after a taken slot), else the first free one.
    showDay(slotsByDay.get(chosenDay)?.length ? chosenDay : firstFree);
    slotsStatus.textContent = result.notice ? t(`book.notice.${result.notice}`)
      : result.slots.length ? t("book.slots_count", { count: result.slots.length, from: fmtDate(`${from}T12:00:00Z`, "UTC"), to: fmtDate(`${to}T12:00:00Z`, "UTC") })
      : t("book.no_slots");
  } catch (error) {
    slotsStatus.textContent = "";
    showError(errorBox, error);
  }
}

function minors() {
  return [...document.querySelectorAll("#minors .minor")].map((row) => ({
    name: row.querySelector("input[type=text]").value.trim(),
    date_of_birth: row.querySelector("input[type=date]").value,
  }));
}

let minorCount = 0;
document.getElementById("add-minor").addEventListener("click", () => {
  const box = document.getElementById("minors");
  if (box.children.length >= 5) return;
  minorCount += 1;
  const n = minorCount;
  const row = el("div", { class: "minor" },
    el("div", {}, el("label", { for: `minor-name-${n}` }, t("book.minor_name")),
      el("input", { id: `minor-name-${n}`, type: "text", maxlength: "100" })),
    el("div", {}, el("label", { for: `minor-dob-${n}` }, t("book.minor_dob")),
      el("input", { id: `minor-dob-${n}`, type: "date" })),
    el("div", {}, el("button", { type: "button", class: "danger", onclick: () => row.remove() },
      t("book.remove_minor"))));
  box.append(row);
  row.querySelector("input").focus();
});

async function book(slot) {
  errorBox.hidden = true;
  const kids = minors();
  if (kids.some((m) => !m.name || !m.date_of_birth)) {
    errorBox.textContent = t("book.minor_incomplete");
    errorBox.hidden = false;
    return;
  }
  try {
    let visit;
    if (rebookId !== null) {
      visit = await api("POST", `/api/visits/${rebookId}/rebook`, { start: slot.start });
    } else if (rescheduleId !== null) {
      visit = await api("POST", `/api/visits/${rescheduleId}/reschedule`, { start: slot.start });
    } else {
      visit = await api("POST", "/api/visits", { person_id: Number(personSelect.value),
        start: slot.start, minors: kids });
    }
    pending = null;
    confirmBox.hidden = true;
    showBooked(visit);
  } catch (error) {
    if (error instanceof ApiError && (error.status === 409 || error.code === "not_a_slot")) {
      // Taken or changed meanwhile: show the list as it is now, and say why.
      backToSlots();
      await loadSlots();
      const key = TAKEN.has(error.code) ? "book.error.slot_taken" : `book.error.${error.code}`;
      const text = t(key);
      errorBox.textContent = text !== key ? text : t("book.error.not_a_slot");
    } else {
      errorBox.textContent = errorText(error);
    }
    errorBox.hidden = false;
    errorBox.focus?.();
  }
}

function showBooked(visit) {
  document.getElementById("pick-form").hidden = true;
  document.getElementById("minors-box").hidden = true;
  document.getElementById("book-mode").hidden = true;
  slotsBox.closest("section").hidden = true;
  document.getElementById("booked").hidden = false;
  document.getElementById("booked-when").textContent = t("book.booked_when", {
    person: visit.person_name, time: bothTimes(visit.start_utc, visit.timezone) });
  document.getElementById("booked-notice").textContent = t(visit.privileged
    ? "notice.privileged" : "notice.monitored");
  document.getElementById("booked-ics").href = `/api/visits/${visit.id}/calendar.ics`;
  document.getElementById("booked-title").focus();
  announce(t("book.booked"));
}

if (await setUp().catch((error) => { showError(errorBox, error); return false; })) {
  personSelect.addEventListener("change", loadSlots);
  fromInput.addEventListener("change", loadSlots);
  await loadSlots();
}
