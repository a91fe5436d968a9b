// Officer live grid: the visits in scope from /ws/officer as 1, 4 or 9 tiles per page, with
// watch (monitor), per-tile audio, flag, terminate, in-call chat of watched visits, and alerts.

import { announce, api, el, fmtTime, initPage, showError, t, wsUrl } from "/assets/core.js";
import { ReconnectingSocket } from "/assets/socket.js";
import { STAFF_ROLES, chooseFacility } from "./common.js";
import { MonitorSession } from "./monitor.js";
import { VisitTile } from "./tile.js";

const LAYOUT_KEY = "vv.officer.layout";
const LAYOUTS = [1, 4, 9];
const MAX_ALERTS = 20;

const state = {
  rows: new Map(),
  tiles: new Map(),
  monitors: new Map(),
  offsetMs: 0,
  iceServers: [],
  perPage: 4,
  page: 0,
  facilityId: null,
  socket: null,
  dialogTile: null,
};

const $ = (id) => document.getElementById(id);

function serverNow() {
  return Date.now() + state.offsetMs;
}

function syncClock(serverTime) {
  if (serverTime) state.offsetMs = Date.parse(serverTime) - Date.now();
}

function inFacility(row) {
  return state.facilityId === null || row.facility_id === state.facilityId;
}

function orderedRows() {
  return [...state.rows.values()]
    .filter(inFacility)
    .sort((a, b) => Date.parse(a.start_at) - Date.parse(b.start_at) || a.id - b.id);
}

function render() {
  const rows = orderedRows();
  const pages = Math.max(1, Math.ceil(rows.length / state.perPage));
  state.page = Math.min(state.page, pages - 1);
  const shown = rows.slice(state.page * state.perPage, (state.page + 1) * state.perPage);
  const container = $("tiles");
  container.dataset.layout = String(state.perPage);
  const wanted = shown.map((row) => tileFor(row).node);
  const current = [...container.children];
  if (wanted.length !== current.length || wanted.some((node, i) => node !== current[i])) {
    // Tiles leaving the page stop being watched: their video would play unseen.
    for (const [id, monitor] of state.monitors) {
      if (!shown.some((row) => row.id === id)) stopWatching(state.tiles.get(id), monitor);
    }
    container.replaceChildren(...wanted);
    for (const video of container.querySelectorAll("video")) {
      if (video.srcObject) video.play().catch(() => {});
    }
  }
  $("live-empty").hidden = rows.length > 0;
  $("pager").hidden = pages <= 1;
  $("page-info").textContent = t("officer.live.page", { page: state.page + 1, pages });
  $("page-prev").disabled = state.page === 0;
  $("page-next").disabled = state.page >= pages - 1;
  tick();
}

function tick() {
  const now = serverNow();
  for (const tile of state.tiles.values()) tile.tick(now);
}

function tileFor(row) {
  let tile = state.tiles.get(row.id);
  if (!tile) {
    tile = new VisitTile(row, { watch: toggleWatch, audio: toggleAudio, flag: openFlag, terminate: openTerminate });
    state.tiles.set(row.id, tile);
  } else {
    tile.update(row);
  }
  return tile;
}

function removeVisit(id) {
  state.rows.delete(id);
  const monitor = state.monitors.get(id);
  const tile = state.tiles.get(id);
  if (monitor) stopWatching(tile, monitor, { tellServer: false });
  state.tiles.delete(id);
}

function stopWatching(tile, monitor, options) {
  state.monitors.delete(monitor.visitId);
  monitor.stop(options);
  tile?.setWatching(false);
}

async function toggleWatch(tile) {
  const running = state.monitors.get(tile.id);
  if (running) {
    stopWatching(tile, running);
    announce(t("officer.watch.stopped", { who: tile.title.textContent }));
    return;
  }
  tile.showMessage("");
  const monitor = new MonitorSession(
    state.socket,
    tile.id,
    state.iceServers,
    { visitor: tile.videoVisitor, kiosk: tile.videoKiosk },
    () => {
      if (state.monitors.get(tile.id) !== monitor) return;
      stopWatching(tile, monitor, { tellServer: false });
      tile.showMessage(t("officer.watch.lost"));
    },
  );
  state.monitors.set(tile.id, monitor);
  tile.setWatching(true);
  tile.watchButton.disabled = true;
  try {
    await monitor.start();
    announce(t("officer.watch.started", { who: tile.title.textContent }));
    loadChatHistory(tile);
  } catch (error) {
    if (state.monitors.get(tile.id) === monitor) stopWatching(tile, monitor, { tellServer: false });
    tile.showMessage(socketErrorText(error));
  } finally {
    tile.watchButton.disabled = false;
  }
}

async function loadChatHistory(tile) {
  try {
    const messages = await api("GET", `/api/visits/${tile.id}/messages`);
    tile.chatList.replaceChildren();
    for (const message of messages) tile.addChat(message);
  } catch (error) {
    // No history yet (or none kept): live messages still appear as they come.
  }
}

function toggleAudio(tile) {
  const monitor = state.monitors.get(tile.id);
  if (!monitor) return;
  const on = !tile.audioOn;
  monitor.setAudio(on);
  tile.setAudio(on);
  announce(t(on ? "officer.audio.on" : "officer.audio.off", { who: tile.title.textContent }));
}

function socketErrorText(error) {
  const key = `officer.error.${error?.code}`;
  const text = t(key);
  if (text !== key) return text;
  return error?.message || t("error.generic");
}

function openDialog(kind, tile) {
  state.dialogTile = tile;
  const dialog = $(`${kind}-dialog`);
  const field = $(kind === "flag" ? "flag-note" : "terminate-reason");
  $(`${kind}-who`).textContent = tile.title.textContent;
  field.value = "";
  fieldError(kind, "", field);
  dialog.returnFocus = tile.node.querySelector(kind === "flag" ? "button:nth-child(3)" : "button.danger");
  dialog.showModal();
  field.focus();
}

/** Show (or clear) a dialog's error and link it to its field. */
function fieldError(kind, text, field) {
  const node = $(`${kind}-error`);
  node.textContent = text;
  node.hidden = !text;
  if (text) {
    field.setAttribute("aria-invalid", "true");
    field.setAttribute("aria-describedby", node.id);
  } else {
    field.removeAttribute("aria-invalid");
    field.removeAttribute("aria-describedby");
  }
}

function openFlag(tile) {
  openDialog("flag", tile);
}

function openTerminate(tile) {
  openDialog("terminate", tile);
}

function closeDialog(kind) {
  const dialog = $(`${kind}-dialog`);
  dialog.close();
  dialog.returnFocus?.focus();
}

async function submitDialog(kind, event) {
  event.preventDefault();
  const tile = state.dialogTile;
  const field = $(kind === "flag" ? "flag-note" : "terminate-reason");
  const text = field.value.trim();
  if (!text) {
    fieldError(kind, t(`officer.${kind}.required`), field);
    field.focus();
    return;
  }
  const button = $(`${kind}-submit`);
  button.disabled = true;
  try {
    if (kind === "flag") {
      await state.socket.request({ type: "flag", visit_id: tile.id, note: text });
      announce(t("officer.flag.done", { who: tile.title.textContent }));
    } else {
      await state.socket.request({ type: "terminate", visit_id: tile.id, reason: text });
      announce(t("officer.terminate.done", { who: tile.title.textContent }));
    }
    closeDialog(kind);
  } catch (error) {
    fieldError(kind, socketErrorText(error), field);
  } finally {
    button.disabled = false;
  }
}

function addAlert(msg) {
  const row = state.rows.get(msg.visit_id);
  const key = `officer.alert.${msg.code}`;
  const known = t(key, { kiosk: row?.kiosk_name ?? msg.kiosk_id ?? "", person: row?.person_name ?? "" });
  const text = known === key ? msg.message : known;
  const list = $("alert-list");
  list.prepend(
    el("li", { class: "notice" }, el("strong", {}, `${fmtTime(msg.server_time || new Date().toISOString())} `), text),
  );
  while (list.children.length > MAX_ALERTS) list.lastChild.remove();
  $("alerts-empty").hidden = true;
}

function setConnection(status) {
  const node = $("connection");
  node.dataset.state = status;
  node.className = `badge ${status === "open" ? "ok" : status === "connecting" ? "warn" : "bad"}`;
  node.textContent = t(`officer.connection.${status}`);
}

function onMessage(msg) {
  switch (msg.type) {
    case "welcome":
      state.iceServers = msg.ice_servers || [];
      syncClock(msg.server_time);
      break;
    case "live_snapshot": {
      syncClock(msg.server_time);
      const ids = new Set(msg.visits.map((row) => row.id));
      for (const id of [...state.rows.keys()]) if (!ids.has(id)) removeVisit(id);
      for (const row of msg.visits) state.rows.set(row.id, row);
      render();
      break;
    }
    case "live_update":
      syncClock(msg.server_time);
      for (const id of msg.removed || []) removeVisit(id);
      for (const row of msg.changed || []) state.rows.set(row.id, row);
      render();
      break;
    case "alert":
      addAlert(msg);
      break;
    case "chat":
      state.tiles.get(msg.visit_id)?.addChat(msg);
      break;
    default:
      break;
  }
}

function onState(status, refusal) {
  if (status === "refused") {
    setConnection("closed");
    const target = `/signin?next=${encodeURIComponent(location.pathname)}`;
    if (["session_expired", "unauthenticated", "credentials_revoked"].includes(refusal?.code)) {
      location.replace(target);
    }
    return;
  }
  setConnection(status);
  if (status === "closed") {
    // Watching needs the socket; the peer connections end with it on the server side.
    for (const monitor of [...state.monitors.values()]) {
      stopWatching(state.tiles.get(monitor.visitId), monitor, { tellServer: false });
    }
  }
}

function setLayout(perPage) {
  state.perPage = LAYOUTS.includes(perPage) ? perPage : 4;
  localStorage.setItem(LAYOUT_KEY, String(state.perPage));
  $("layout").value = String(state.perPage);
  render();
}

async function main() {
  const session = await initPage({ area: "officer", titleKey: "officer.live.title", roles: STAFF_ROLES });
  try {
    const choice = await chooseFacility(session, $("facility-picker"), (id) => {
      state.facilityId = id;
      state.page = 0;
      render();
    });
    state.facilityId = session.account.role === "agency_admin" ? choice.facilityId : null;
  } catch (error) {
    showError("live-error", error);
  }
  $("layout").addEventListener("change", (event) => setLayout(Number(event.target.value)));
  $("page-prev").addEventListener("click", () => {
    state.page -= 1;
    render();
  });
  $("page-next").addEventListener("click", () => {
    state.page += 1;
    render();
  });
  for (const kind of ["flag", "terminate"]) {
    $(`${kind}-form`).addEventListener("submit", (event) => submitDialog(kind, event));
    $(`${kind}-cancel`).addEventListener("click", () => closeDialog(kind));
  }
  setLayout(Number(localStorage.getItem(LAYOUT_KEY)) || 4);
  state.socket = new ReconnectingSocket(wsUrl("/ws/officer"), { onMessage, onState });
  state.socket.start();
  window.addEventListener("online", () => state.socket.reconnectNow());
  setInterval(tick, 1000);
}

main();
