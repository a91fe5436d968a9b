// Kiosk status board: each kiosk of the facility, online or offline, last seen, current visit.
// The kiosk list comes from the API; presence and current visits from the live feed.

import { api, el, fmtDateTime, fmtTime, initPage, showError, t, wsUrl } from "/assets/core.js";
import { ReconnectingSocket } from "/assets/socket.js";
import { STAFF_ROLES, chooseFacility, stateText } from "./common.js";

const REFRESH_MS = 15000;
const $ = (id) => document.getElementById(id);
const state = { facilityId: null, timezone: undefined, facilities: [], kiosks: [], units: new Map(), rows: new Map(), offsetMs: 0 };

function online(kiosk) {
  const live = [...state.rows.values()].find((row) => row.kiosk_id === kiosk.id);
  if (live) return live.kiosk_online;
  return kiosk.online; // the server knows whether its socket is open now
}

function currentVisit(kiosk) {
  const now = Date.now() + state.offsetMs;
  return [...state.rows.values()].find(
    (row) => row.kiosk_id === kiosk.id && Date.parse(row.start_at) <= now && Date.parse(row.end_at) > now,
  );
}

function render() {
  $("kiosk-rows").replaceChildren(
    ...state.kiosks.map((kiosk) => {
      const isOnline = online(kiosk);
      const status = !kiosk.enabled ? "disabled" : isOnline ? "online" : "offline";
      const badge = { online: "ok", offline: "bad", disabled: "" }[status];
      const visit = currentVisit(kiosk);
      return el(
        "tr",
        { dataset: { kioskId: String(kiosk.id) } },
        el("th", { scope: "row" }, kiosk.name),
        el("td", {}, state.units.get(kiosk.unit_id) || ""),
        el("td", {}, el("span", { class: `badge ${badge}` }, t(`officer.kiosks.${status}`))),
        el("td", {}, kiosk.last_seen_at ? fmtDateTime(kiosk.last_seen_at, state.timezone) : t("officer.kiosks.never")),
        el(
          "td",
          {},
          visit
            ? t("officer.kiosks.visitNow", {
                who: t("officer.tile.who", { person: visit.person_name, visitor: visit.visitor_name }),
                state: stateText(visit.state, visit.start_at, visit.end_at, Date.now() + state.offsetMs),
                end: fmtTime(visit.end_at, state.timezone),
              })
            : t("officer.kiosks.noVisit"),
        ),
      );
    }),
  );
  $("kiosks-none").hidden = state.kiosks.length > 0;
  $("kiosks").hidden = state.kiosks.length === 0;
}

async function loadKiosks() {
  if (!state.facilityId) return;
  try {
    const [kiosks, units] = await Promise.all([
      api("GET", `/api/facilities/${state.facilityId}/kiosks`),
      api("GET", `/api/facilities/${state.facilityId}/units`),
    ]);
    state.kiosks = kiosks.sort((a, b) => a.name.localeCompare(b.name));
    state.units = new Map(units.map((unit) => [unit.id, unit.name]));
    showError("kiosks-error", null);
    render();
  } catch (error) {
    showError("kiosks-error", error);
  }
}

function onMessage(msg) {
  if (msg.server_time) state.offsetMs = Date.parse(msg.server_time) - Date.now();
  if (msg.type === "live_snapshot") {
    state.rows = new Map(msg.visits.map((row) => [row.id, row]));
    render();
  } else if (msg.type === "live_update") {
    for (const id of msg.removed || []) state.rows.delete(id);
    for (const row of msg.changed || []) state.rows.set(row.id, row);
    // A kiosk coming online or going offline: its last-seen time changed too.
    loadKiosks();
  }
}

function setConnection(status) {
  const node = $("connection");
  node.className = `badge ${status === "open" ? "ok" : status === "connecting" ? "warn" : "bad"}`;
  node.textContent = t(`officer.connection.${status}`);
}

async function main() {
  const session = await initPage({ area: "officer", titleKey: "officer.kiosks.title", roles: STAFF_ROLES });
  try {
    const choice = await chooseFacility(session, $("facility-picker"), (id) => {
      state.facilityId = id;
      state.timezone = state.facilities.find((f) => f.id === id)?.timezone;
      loadKiosks();
    });
    state.facilityId = choice.facilityId;
    state.facilities = choice.facilities;
    state.timezone = choice.facilities.find((f) => f.id === choice.facilityId)?.timezone;
  } catch (error) {
    showError("kiosks-error", error);
  }
  await loadKiosks();
  const socket = new ReconnectingSocket(wsUrl("/ws/officer"), {
    onMessage,
    onState: (status) => setConnection(status === "refused" ? "closed" : status),
  });
  socket.start();
  setInterval(loadKiosks, REFRESH_MS);
}

main();
