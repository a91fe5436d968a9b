// One visit on the officer's live grid: who, kiosk, time left, quality, and the controls
// (watch, audio, flag, terminate). Privileged visits get a badge and no watch or audio controls.

import { el, fmtDuration, fmtTime, t } from "/assets/core.js";
import { qualityBadge, stateText } from "./common.js";

const MAX_CHAT_LINES = 50;

/**
 * Where one side stands, from the server's view of its media: "in the call" only while its
 * media reaches the server; joined without media yet is "connecting", and past the connect
 * timeout "cannot connect".
 */
function sideText(row, side) {
  if (row[`${side}_media_flowing`]) return t("officer.tile.in");
  if (row[`${side}_cannot_connect`]) return t("officer.tile.cannotConnect");
  if (!row[`${side}_connected`]) return t("officer.tile.out");
  if (row[`${side}_media`] === "connected") return t("officer.tile.noMedia");
  return t("officer.tile.connecting");
}

/** A side's quality badge; none for a side whose media never connected (nothing to rate). */
function sideQuality(row, side) {
  const stuck = row[`${side}_cannot_connect`] && !row[`${side}_media_flowing`];
  return qualityBadge(stuck ? null : row[`${side}_quality`], row[`${side}_connected`] && !stuck);
}

export class VisitTile {
  /** `actions`: {watch(tile), audio(tile), flag(tile), terminate(tile)}. */
  constructor(row, actions) {
    this.id = row.id;
    this.row = row;
    this.actions = actions;
    this.watching = false;
    this.audioOn = false;
    const titleId = `tile-${row.id}-title`;
    this.title = el("h3", { id: titleId });
    this.badges = el("p", { class: "tile-badges" });
    this.kiosk = el("dd");
    this.state = el("dd");
    this.timeLeftLabel = el("dt");
    this.timeLeft = el("dd", { class: "time-left" });
    this.quality = el("dd", { class: "quality" });
    this.lost = el("dd", { class: "lost-time" });
    this.details = el(
      "dl",
      { class: "tile-facts" },
      el("dt", {}, t("officer.tile.kiosk")),
      this.kiosk,
      el("dt", {}, t("officer.tile.state")),
      this.state,
      this.timeLeftLabel,
      this.timeLeft,
      el("dt", {}, t("officer.tile.quality")),
      this.quality,
      el("dt", {}, t("officer.tile.lost")),
      this.lost,
    );
    this.videoVisitor = el("video", {
      playsinline: true,
      muted: true,
      "aria-label": t("officer.tile.videoVisitor"),
    });
    this.videoKiosk = el("video", {
      playsinline: true,
      muted: true,
      "aria-label": t("officer.tile.videoKiosk"),
    });
    this.media = el(
      "div",
      { class: "tile-media", hidden: true },
      el("figure", {}, this.videoVisitor, el("figcaption", {}, t("officer.tile.visitorSide"))),
      el("figure", {}, this.videoKiosk, el("figcaption", {}, t("officer.tile.kioskSide"))),
    );
    this.watchButton = el(
      "button",
      { type: "button", class: "primary", onclick: () => this.actions.watch(this) },
      t("officer.tile.watch"),
    );
    this.audioButton = el(
      "button",
      {
        type: "button",
        "aria-pressed": "false",
        disabled: true,
        onclick: () => this.actions.audio(this),
      },
      t("officer.tile.audio"),
    );
    this.flagButton = el(
      "button",
      { type: "button", onclick: () => this.actions.flag(this) },
      t("officer.tile.flag"),
    );
    this.terminateButton = el(
      "button",
      { type: "button", class: "danger", onclick: () => this.actions.terminate(this) },
      t("officer.tile.terminate"),
    );
    this.controls = el(
      "div",
      { class: "row tile-controls" },
      this.watchButton,
      this.audioButton,
      this.flagButton,
      this.terminateButton,
    );
    this.message = el("p", { class: "error", role: "alert", hidden: true });
    this.chatList = el("ol", { class: "chat-list" });
    this.chat = el(
      "section",
      { class: "tile-chat", hidden: true, "aria-label": t("officer.tile.chat") },
      el("h4", {}, t("officer.tile.chat")),
      this.chatList,
    );
    this.node = el(
      "article",
      { class: "tile card", "aria-labelledby": titleId, dataset: { visitId: String(row.id) } },
      this.title,
      this.badges,
      this.details,
      this.media,
      this.controls,
      this.message,
      this.chat,
    );
    this.update(row);
  }

  update(row) {
    this.row = row;
    this.title.textContent = t("officer.tile.who", {
      person: row.person_name,
      visitor: row.visitor_name,
    });
    const badges = [];
    if (row.privileged) {
      badges.push(el("span", { class: "badge warn" }, t("officer.tile.privileged")));
    }
    if (row.on_demand) {
      badges.push(el("span", { class: "badge" }, t(`officer.tile.onDemand.${row.on_demand}`)));
    }
    badges.push(
      el(
        "span",
        { class: `badge ${row.kiosk_online ? "ok" : "bad"}` },
        t(row.kiosk_online ? "officer.kiosk.online" : "officer.kiosk.offline"),
      ),
    );
    if (row.flags > 0) {
      badges.push(el("span", { class: "badge warn" }, t("officer.tile.flagged", { count: row.flags })));
    }
    // A side whose media stopped reaching the server: it is losing time now.
    if (row.visitor_losing) {
      badges.push(el("span", { class: "badge bad" }, t("officer.tile.losingVisitor")));
    }
    if (row.kiosk_losing) {
      badges.push(el("span", { class: "badge bad" }, t("officer.tile.losingKiosk")));
    }
    // A side that joined but whose media never connected (e.g. its network blocks UDP).
    if (row.visitor_cannot_connect && !row.visitor_media_flowing) {
      badges.push(el("span", { class: "badge bad" }, t("officer.tile.cannotConnectVisitor")));
    }
    if (row.kiosk_cannot_connect && !row.kiosk_media_flowing) {
      badges.push(el("span", { class: "badge bad" }, t("officer.tile.cannotConnectKiosk")));
    }
    this.badges.replaceChildren(...badges);
    this.kiosk.textContent = `${row.kiosk_name} (${row.unit_name})`;
    this.showState();
    this.quality.replaceChildren(
      t("officer.tile.visitorSide"),
      " ",
      sideQuality(row, "visitor"),
      " ",
      t("officer.tile.kioskSide"),
      " ",
      sideQuality(row, "kiosk"),
    );
    this.lost.textContent = t("officer.tile.lostSides", {
      visitor: fmtDuration(row.visitor_lost_seconds ?? 0),
      kiosk: fmtDuration(row.kiosk_lost_seconds ?? 0),
    });
    // Privileged visits are never monitored or flagged: no such controls at all.
    this.watchButton.hidden = row.privileged;
    this.audioButton.hidden = row.privileged;
    this.flagButton.hidden = row.privileged;
    this.watchButton.disabled = !this.watching && row.state !== "live" && row.state !== "ready";
  }

  /** The state line: where the visit stands (by the server's clock) and who is in the call. */
  showState(now = this.now ?? Date.now()) {
    const row = this.row;
    this.state.textContent = `${stateText(row.state, row.start_at, row.end_at, now)} · ${t(
      "officer.tile.sides",
      {
        visitor: sideText(row, "visitor"),
        kiosk: sideText(row, "kiosk"),
      },
    )}`;
  }

  /** Refresh the countdown; `now` is the server's time in ms. */
  tick(now) {
    this.now = now;
    this.showState(now);
    const start = Date.parse(this.row.start_at);
    const end = Date.parse(this.row.end_at);
    if (now < start) {
      this.timeLeftLabel.textContent = t("officer.tile.startsIn");
      this.timeLeft.textContent = `${fmtDuration((start - now) / 1000)} (${fmtTime(this.row.start_at)})`;
    } else {
      this.timeLeftLabel.textContent = t("officer.tile.timeLeft");
      this.timeLeft.textContent = fmtDuration((end - now) / 1000);
    }
  }

  setWatching(on) {
    this.watching = on;
    this.media.hidden = !on;
    this.watchButton.textContent = t(on ? "officer.tile.stopWatch" : "officer.tile.watch");
    this.watchButton.className = on ? "" : "primary";
    this.audioButton.disabled = !on;
    if (!on) this.setAudio(false);
    this.update(this.row);
  }

  setAudio(on) {
    this.audioOn = on;
    this.audioButton.setAttribute("aria-pressed", on ? "true" : "false");
  }

  showMessage(text) {
    this.message.textContent = text || "";
    this.message.hidden = !text;
  }

  addChat(message) {
    const from = message.from === "kiosk" ? this.row.person_name : this.row.visitor_name;
    this.chatList.append(
      el(
        "li",
        {},
        el("span", { class: "chat-meta" }, `${fmtTime(message.at)} ${from}: `),
        message.text,
      ),
    );
    while (this.chatList.children.length > MAX_CHAT_LINES) this.chatList.firstChild.remove();
    this.chat.hidden = false;
  }
}
