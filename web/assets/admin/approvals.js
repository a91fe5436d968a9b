// Approval queue: each waiting request with the visitor's ID photo (every view is audited by the
// server), ID verification or rejection, then approval or denial of the relationship.

import { announce, api, apiRaw, el, fmtDateTime, showError, t } from "/assets/core.js";
import { busy, confirmDialog, startAdminPage } from "/assets/admin/common.js";

const { facility } = await startAdminPage("approvals.title");
const main = document.getElementById("main");
const photoUrls = [];
addEventListener("pagehide", () => photoUrls.forEach((url) => URL.revokeObjectURL(url)));

if (facility) {
  const list = el("div", { id: "queue", class: "queue" });
  main.append(
    el("p", { class: "muted" }, t("approvals.lead")),
    el(
      "section",
      { "aria-labelledby": "queue-title" },
      el("h2", { id: "queue-title" }, t("approvals.queue")),
      list,
    ),
    el("p", {}, el("a", { href: "/admin/people" }, t("approvals.people_link"))),
  );
  await loadQueue(list);
}

async function loadQueue(list) {
  list.replaceChildren(el("p", {}, t("common.loading")));
  try {
    const rows = await api(
      "GET",
      `/api/approvals?status=requested&facility_id=${facility.id}&limit=500`,
    );
    list.replaceChildren(...rows.map(requestCard));
    if (!rows.length) list.append(el("p", { id: "queue-empty" }, t("approvals.empty")));
  } catch (error) {
    const problem = el("p", { class: "error", role: "alert" });
    list.replaceChildren(problem);
    showError(problem, error);
  }
}

function kindLabel(approval) {
  return t(`approvals.kind.${approval.professional}`);
}

function idBadge(status) {
  const tone = { verified: "ok", pending: "warn", rejected: "bad" }[status] || "";
  return el("span", { class: `badge ${tone}` }, t(`approvals.id.${status}`));
}

function requestCard(approval) {
  const visitor = approval.visitor;
  const person = approval.person;
  const personName = `${person.first_name} ${person.last_name}`;
  const titleId = `req-${approval.id}-title`;
  const error = el("p", { class: "error", id: `req-${approval.id}-error`, role: "alert", hidden: true });
  const idState = el("dd", {}, idBadge(visitor.id_status));
  const photoSlot = el("div", { class: "id-photo" });
  const idButtons = el("div", { class: "row" });
  const card = el(
    "article",
    { class: "card request", "aria-labelledby": titleId, dataset: { approvalId: approval.id } },
    el("h3", { id: titleId }, t("approvals.card_title", { visitor: visitor.name, person: personName })),
    el(
      "dl",
      { class: "facts" },
      el("dt", {}, t("approvals.person")),
      el("dd", {}, t("approvals.person_value", { name: personName, booking: person.booking_number })),
      el("dt", {}, t("approvals.relationship")),
      el("dd", {}, approval.relationship),
      el("dt", {}, t("approvals.kind")),
      el("dd", {}, kindLabel(approval)),
      approval.bar_number ? el("dt", {}, t("approvals.bar_number")) : null,
      approval.bar_number ? el("dd", {}, approval.bar_number) : null,
      el("dt", {}, t("approvals.requested_at")),
      el("dd", {}, fmtDateTime(approval.created_at, facility.timezone)),
      el("dt", {}, t("approvals.email")),
      el("dd", {}, visitor.email_verified ? t("approvals.email_ok") : t("approvals.email_missing")),
      el("dt", {}, t("approvals.id_status")),
      idState,
    ),
    visitor.banned ? el("p", { class: "notice" }, t("approvals.banned")) : null,
    el("h4", {}, t("approvals.id_heading")),
    photoSlot,
    idButtons,
    el("h4", {}, t("approvals.decision_heading")),
    decisionButtons(approval, personName, error),
    error,
  );
  renderIdControls(approval, idState, photoSlot, idButtons, error);
  return card;
}

function renderIdControls(approval, idState, photoSlot, idButtons, error) {
  const visitor = approval.visitor;
  idButtons.replaceChildren();
  if (!visitor.has_id_photo) {
    photoSlot.replaceChildren(el("p", { class: "muted" }, t("approvals.no_photo")));
    return;
  }
  if (!photoSlot.querySelector("img")) {
    const show = el("button", { type: "button" }, t("approvals.show_photo"));
    show.addEventListener("click", () =>
      busy(show, () => showPhoto(visitor, photoSlot), error),
    );
    photoSlot.replaceChildren(show);
  }
  if (visitor.id_status === "verified") return;
  const verify = el("button", { type: "button", class: "primary" }, t("approvals.verify_id"));
  const reject = el("button", { type: "button", class: "danger" }, t("approvals.reject_id"));
  verify.addEventListener("click", () =>
    busy(
      verify,
      async () => {
        await api("POST", `/api/visitors/${visitor.id}/id-check`, { decision: "verified" });
        visitor.id_status = "verified";
        idState.replaceChildren(idBadge("verified"));
        renderIdControls(approval, idState, photoSlot, idButtons, error);
        announce(t("approvals.id_verified", { name: visitor.name }));
      },
      error,
    ),
  );
  reject.addEventListener("click", async () => {
    const answer = await confirmDialog({
      title: t("approvals.reject_id_title", { name: visitor.name }),
      message: t("approvals.reject_id_message"),
      confirmLabel: t("approvals.reject_id"),
      danger: true,
      reasonLabel: t("approvals.reason"),
    });
    if (!answer.ok) return;
    await busy(
      reject,
      async () => {
        await api("POST", `/api/visitors/${visitor.id}/id-check`, {
          decision: "rejected",
          reason: answer.reason,
        });
        visitor.id_status = "rejected";
        idState.replaceChildren(idBadge("rejected"));
        renderIdControls(approval, idState, photoSlot, idButtons, error);
        announce(t("approvals.id_rejected", { name: visitor.name }));
      },
      error,
    );
  });
  idButtons.append(verify, reject);
}

async function showPhoto(visitor, photoSlot) {
  const response = await apiRaw("GET", `/api/visitors/${visitor.id}/id-photo`);
  const url = URL.createObjectURL(await response.blob());
  photoUrls.push(url);
  const image = el("img", { src: url, alt: t("approvals.photo_alt", { name: visitor.name }) });
  photoSlot.replaceChildren(el("figure", {}, image, el("figcaption", {}, t("approvals.photo_caption"))));
}

function decisionButtons(approval, personName, error) {
  const approve = el("button", { type: "button", class: "primary" }, t("approvals.approve"));
  const deny = el("button", { type: "button", class: "danger" }, t("approvals.deny"));
  const names = { visitor: approval.visitor.name, person: personName };
  const decided = (message) => {
    const card = approve.closest("article");
    const list = card.parentElement;
    const next = card.nextElementSibling || card.previousElementSibling;
    card.remove();
    if (!list.querySelector("article")) {
      list.append(el("p", { id: "queue-empty" }, t("approvals.empty")));
    }
    announce(message);
    (next?.querySelector("h3") || document.getElementById("queue-title")).setAttribute("tabindex", "-1");
    (next?.querySelector("h3") || document.getElementById("queue-title")).focus();
  };
  approve.addEventListener("click", () =>
    busy(
      approve,
      async () => {
        await api("POST", `/api/approvals/${approval.id}/decision`, { decision: "approved" });
        decided(t("approvals.approved", names));
      },
      error,
    ),
  );
  deny.addEventListener("click", async () => {
    const answer = await confirmDialog({
      title: t("approvals.deny_title", names),
      message: t("approvals.deny_message"),
      confirmLabel: t("approvals.deny"),
      danger: true,
      reasonLabel: t("approvals.reason"),
    });
    if (!answer.ok) return;
    await busy(
      deny,
      async () => {
        await api("POST", `/api/approvals/${approval.id}/decision`, {
          decision: "denied",
          reason: answer.reason,
        });
        decided(t("approvals.denied", names));
      },
      error,
    );
  });
  return el("div", { class: "row" }, approve, deny);
}
