// Small helpers shared by the visitor pages: both time zones, state badges, facilities.
import { api, el, fmtDateTime, fmtTime, t, visitPhase } from "/assets/core.js";

export function ownZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/** "Nov 25, 2026, 10:00 AM facility time (America/New_York)" plus the visitor's own time. */
export function bothTimes(iso, facilityZone, { timeOnly = false } = {}) {
  const fmt = timeOnly ? fmtTime : fmtDateTime;
  const facility = t("time.facility", { time: fmt(iso, facilityZone), zone: facilityZone });
  const own = ownZone();
  if (own === facilityZone) return facility;
  return `${facility} · ${t("time.own", { time: fmt(iso, own) })}`;
}

const BADGE = {
  scheduled: "ok", ready: "ok", live: "ok", approved: "ok", verified: "ok",
  requested: "warn", pending: "warn", none: "warn",
  cancelled: "bad", no_show: "bad", failed: "bad", terminated: "bad", denied: "bad",
  revoked: "bad", rejected: "bad",
};

export function badge(kind, state) {
  return el("span", { class: `badge ${BADGE[state] || ""}` }, t(`${kind}.${state}`));
}

// The badges that count down ("Starts in 4:05"): refreshed every second while shown.
const liveBadges = new Set();
let badgeTimer = null;

/**
 * A visit's state badge: an active visit says where it stands in the words every page uses
 * ("Starts in 4:05", "Starting", "In progress"); an ended one names its end state.
 */
export function visitBadge(visit) {
  const phase = visitPhase(visit.state, visit.start_utc, visit.end_utc);
  if (!phase) return badge("state", visit.state);
  const node = el("span", { class: `badge ${BADGE[visit.state] || ""}` }, phase);
  liveBadges.add({ node, visit });
  badgeTimer ||= setInterval(refreshBadges, 1000);
  return node;
}

function refreshBadges() {
  for (const entry of liveBadges) {
    if (!entry.node.isConnected) {
      if (entry.shown) liveBadges.delete(entry); // taken off the page (not yet put on: wait)
      continue;
    }
    entry.shown = true;
    const { visit } = entry;
    const phase = visitPhase(visit.state, visit.start_utc, visit.end_utc);
    if (phase && entry.node.textContent !== phase) entry.node.textContent = phase;
  }
}

const facilities = new Map();

/** A facility (name, time zone, rules), fetched once per page. */
export async function facility(id) {
  if (!facilities.has(id)) facilities.set(id, api("GET", `/api/facilities/${id}`));
  return facilities.get(id);
}

export const ACTIVE_STATES = new Set(["scheduled", "ready", "live"]);

/** True while the join window is open: from `minutes` before the start until the end. */
export function joinOpen(visit, minutes, now = Date.now()) {
  return ACTIVE_STATES.has(visit.state) &&
    now >= Date.parse(visit.start_utc) - minutes * 60000 && now < Date.parse(visit.end_utc);
}

/** The `?name=` number of this page's URL, or null. */
export function queryId(name) {
  const raw = new URLSearchParams(location.search).get(name) || "";
  return /^[0-9]{1,10}$/.test(raw) ? Number(raw) : null;
}
