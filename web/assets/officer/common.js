// Shared bits of the officer pages: roles, facility choice (agency admins pick one), labels.

import { api, el, t, visitPhase } from "/assets/core.js";

export const STAFF_ROLES = ["officer", "facility_admin", "agency_admin"];
const FACILITY_KEY = "vv.officer.facility";

/**
 * The facility the page shows. Officers and facility admins have one; agency admins choose
 * from their agency's facilities with a labelled select put in `container`.
 * Resolves with {facilityId, facilities} and calls `onChange(id)` when the choice changes.
 */
export async function chooseFacility(session, container, onChange) {
  const facilities = await api("GET", "/api/facilities");
  const own = session?.account?.facility_id;
  if (own) return { facilityId: own, facilities };
  if (!facilities.length) return { facilityId: null, facilities };
  const saved = Number(localStorage.getItem(FACILITY_KEY));
  const chosen = facilities.some((f) => f.id === saved) ? saved : facilities[0].id;
  if (container) {
    const select = el(
      "select",
      {
        id: "facility-choice",
        onchange: (event) => {
          localStorage.setItem(FACILITY_KEY, event.target.value);
          onChange?.(Number(event.target.value));
        },
      },
      facilities.map((f) => el("option", { value: f.id, selected: f.id === chosen }, f.name)),
    );
    container.replaceChildren(
      el("label", { for: "facility-choice" }, t("officer.facility")),
      select,
    );
    container.hidden = false;
  }
  return { facilityId: chosen, facilities };
}

/** "good" | "fair" | "poor" | "none" for one side's quality figures from the relay. */
export function qualityLevel(quality) {
  if (!quality) return "none";
  const fps = quality.video_fps_in ?? 0;
  const lost = quality.packets_lost_in ?? 0;
  const rtt = quality.round_trip_time_s ?? 0;
  if (fps >= 15 && lost < 20 && rtt < 0.3) return "good";
  if (fps >= 5 && lost < 100 && rtt < 1) return "fair";
  return "poor";
}

const BADGE_CLASS = { good: "ok", fair: "warn", poor: "bad", none: "" };

/** A badge naming a quality level in words (never colour alone). */
export function qualityBadge(quality, connected = false) {
  const level = qualityLevel(quality);
  // The first figures come one sampling interval (5 s) after a side connects.
  const key = level === "none" && connected ? "measuring" : level;
  return el("span", { class: `badge ${BADGE_CLASS[level]}` }, t(`officer.quality.${key}`));
}

/**
 * A visit's state in words. With its start and end (and `now`, server ms), an active visit
 * says where it stands in the words every page uses ("Starts in 4:05", "Starting", ...).
 */
export function stateText(state, startIso = null, endIso = null, now = Date.now()) {
  const phase = startIso && endIso ? visitPhase(state, startIso, endIso, now) : null;
  if (phase) return phase;
  const key = `officer.state.${state}`;
  const text = t(key);
  return text === key ? state : text;
}
