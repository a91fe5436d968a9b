// Playback of a visit's recording: one <video> per participant, aligned by each file's
// `offset_s` from the recording manifest, driven by one clock (play/pause, seek, skip), with the
// flags as buttons on a timeline that seek to their moment, and the evidence export.

import { api, el, fmtDateTime, fmtDuration, initPage, showError, t } from "/assets/core.js";
import { holdControl, holdHistory, refreshHolds } from "./holds.js";
import { STAFF_ROLES } from "./common.js";

const SIDES = ["visitor", "kiosk"];
const DRIFT_S = 0.35;
const $ = (id) => document.getElementById(id);

class SyncedPlayer {
  /** `tracks`: the manifest's files; `videos`: {visitor, kiosk} elements. */
  constructor(tracks, videos, onTick) {
    this.videos = videos;
    this.onTick = onTick;
    this.segments = {};
    for (const side of SIDES) {
      this.segments[side] = tracks
        .filter((track) => track.participant === side)
        .sort((a, b) => a.offset_s - b.offset_s);
    }
    this.duration = Math.max(0, ...tracks.map((track) => track.offset_s + track.duration_s));
    this.position = 0;
    this.playing = false;
    this.wallStart = 0;
    this.positionAtStart = 0;
    this.frame = null;
    this.current = { visitor: null, kiosk: null };
    this.sync(true);
  }

  segmentAt(side, position) {
    return (
      this.segments[side].find(
        (seg) => position >= seg.offset_s && position < seg.offset_s + seg.duration_s,
      ) || null
    );
  }

  /** Put each side's video at the clock's position (switching files between segments). */
  sync(force = false) {
    for (const side of SIDES) {
      const video = this.videos[side];
      const segment = this.segmentAt(side, this.position);
      $(`gap-${side}`).hidden = Boolean(segment) || this.segments[side].length === 0;
      if (!segment) {
        if (!video.paused) video.pause();
        continue;
      }
      if (this.current[side] !== segment) {
        this.current[side] = segment;
        video.src = segment.url;
        force = true;
      }
      const want = this.position - segment.offset_s;
      if (force || Math.abs(video.currentTime - want) > DRIFT_S) {
        video.currentTime = Math.max(0, want);
      }
      if (this.playing && video.paused) video.play().catch(() => {});
      if (!this.playing && !video.paused) video.pause();
    }
    this.onTick(this.position, this.duration, this.playing);
  }

  loop() {
    if (!this.playing) return;
    const elapsed = (performance.now() - this.wallStart) / 1000;
    this.position = Math.min(this.duration, this.positionAtStart + elapsed);
    if (this.position >= this.duration) {
      this.pause();
      return;
    }
    this.sync();
    this.frame = requestAnimationFrame(() => this.loop());
  }

  play() {
    if (this.position >= this.duration) this.position = 0;
    this.playing = true;
    this.wallStart = performance.now();
    this.positionAtStart = this.position;
    this.sync(true);
    this.loop();
  }

  pause() {
    this.playing = false;
    cancelAnimationFrame(this.frame);
    this.sync();
  }

  toggle() {
    if (this.playing) this.pause();
    else this.play();
  }

  seek(position) {
    this.position = Math.min(this.duration, Math.max(0, position));
    this.wallStart = performance.now();
    this.positionAtStart = this.position;
    this.sync(true);
  }
}

function showPosition(position, duration, playing) {
  $("position").textContent = `${fmtDuration(position)} / ${fmtDuration(duration)}`;
  const seek = $("seek");
  if (document.activeElement !== seek || playing) seek.value = String(position);
  seek.setAttribute("aria-valuetext", t("officer.play.at", { at: fmtDuration(position), total: fmtDuration(duration) }));
  const button = $("play");
  const label = t(playing ? "officer.play.pause" : "officer.play.play");
  if (button.textContent !== label) button.textContent = label;
}

function renderFlags(flags, player) {
  $("flags-none").hidden = flags.length > 0;
  const timeline = $("timeline");
  timeline.hidden = flags.length === 0;
  const markers = [];
  const items = [];
  for (const flag of flags) {
    const at = fmtDuration(flag.offset_s);
    const label = t("officer.play.flagAt", { at, note: flag.note });
    const marker = el(
      "button",
      { type: "button", class: "marker", "aria-label": label, onclick: () => player.seek(flag.offset_s) },
      at,
    );
    // Positioned through the CSSOM: the CSP forbids style attributes, not style properties.
    const share = player.duration ? flag.offset_s / player.duration : 0;
    marker.style.left = `${Math.min(100, Math.max(0, share * 100))}%`;
    markers.push(marker);
    items.push(
      el(
        "li",
        {},
        el("button", { type: "button", onclick: () => player.seek(flag.offset_s) }, at),
        flag.note,
      ),
    );
  }
  timeline.replaceChildren(...markers);
  $("flag-list").replaceChildren(...items);
}

async function main() {
  await initPage({ area: "officer", titleKey: "officer.play.title", roles: STAFF_ROLES });
  const visitId = Number(new URLSearchParams(location.search).get("visit_id"));
  if (!Number.isInteger(visitId) || visitId < 1) {
    $("play-error").textContent = t("officer.play.noVisit");
    $("play-error").hidden = false;
    return;
  }
  let visit;
  try {
    visit = await api("GET", `/api/visits/${visitId}`);
  } catch (error) {
    showError("play-error", error);
    return;
  }
  $("play-title").textContent = t("officer.play.heading", {
    person: visit.person_name,
    visitor: visit.visitor_name,
  });
  $("play-facts").textContent = t("officer.play.facts", {
    when: fmtDateTime(visit.start_utc, visit.timezone),
    kiosk: visit.kiosk_name,
  });
  if (visit.privileged) {
    $("play-error").textContent = t("officer.play.privileged");
    $("play-error").hidden = false;
    return;
  }
  let recording;
  try {
    recording = await api("GET", `/api/visits/${visitId}/recording`);
  } catch (error) {
    if (error.status === 404) {
      $("play-error").textContent = t("officer.play.noRecording");
      $("play-error").hidden = false;
    } else {
      showError("play-error", error);
    }
    return;
  }
  if (!recording.tracks.some((track) => track.duration_s > 0)) {
    // A visit whose call never connected (failed, no-show) has a recording with nothing in it.
    $("play-error").textContent = t("officer.play.nothingRecorded");
    $("play-error").hidden = false;
    return;
  }
  for (const side of ["visitor", "kiosk"]) {
    if (!recording.tracks.some((track) => track.participant === side)) {
      // One side never connected: say so instead of an empty 0:00 player.
      const video = $(`video-${side}`);
      video.hidden = true;
      video.after(el("p", { class: "notice" }, t("officer.play.sideNotRecorded")));
    }
  }
  const player = new SyncedPlayer(
    recording.tracks,
    { visitor: $("video-visitor"), kiosk: $("video-kiosk") },
    showPosition,
  );
  $("seek").max = String(player.duration);
  $("player").hidden = false;
  $("play").addEventListener("click", () => player.toggle());
  $("back10").addEventListener("click", () => player.seek(player.position - 10));
  $("fwd10").addEventListener("click", () => player.seek(player.position + 10));
  $("seek").addEventListener("input", (event) => player.seek(Number(event.target.value)));
  $("export").href = `/api/visits/${visitId}/evidence.zip`;
  $("export").setAttribute("download", `visit-${visitId}-evidence.zip`);
  renderFlags(recording.flags, player);
  showPosition(0, player.duration, false);
  renderHold(visit, recording.legal_hold, recording.holds);
}

/** The hold badge, the administrators' place/lift form, and who held it when and why. */
function renderHold(visit, active, holds) {
  const label = `${visit.person_name}, ${fmtDateTime(visit.start_utc, visit.timezone)}`;
  $("hold-box").replaceChildren(holdControl({
    visitId: visit.id,
    active,
    label,
    onChange: async () => {
      const fresh = await refreshHolds(visit.id);
      renderHold(visit, fresh.some((hold) => hold.active), fresh);
      $("hold-title").focus();
    },
  }));
  $("hold-history").replaceChildren(...holdHistory(holds, visit.timezone, fmtDateTime));
}

main();
