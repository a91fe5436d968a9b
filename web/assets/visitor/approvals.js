// /visitor/approvals: my requests and their status; find a person (facility, last name and
// booking number, through the directory) and ask to be approved to visit them.
import { ApiError, announce, api, el, initPage, t } from "/assets/core.js";
import { clearErrors, focusFirstProblem, invalidFields, setFieldError, showFormError } from "/assets/auth/forms.js";
import { badge } from "/assets/visitor/common.js";

await initPage({ area: "visitor", titleKey: "approvals.title", roles: ["visitor"] });

const findForm = document.getElementById("find-form");
const requestForm = document.getElementById("request-form");
const facilitySelect = document.getElementById("find-facility");
const lastName = document.getElementById("find-last");
const bookingNumber = document.getElementById("find-booking");
const professional = document.getElementById("request-professional");
const relationship = document.getElementById("request-relationship");
const barNumber = document.getElementById("request-bar");
let found = null;

async function showRequests() {
  const list = document.getElementById("approval-list");
  const approvals = await api("GET", "/api/approvals");
  list.replaceChildren(...approvals.map((a) => el("li", {},
    // Until approved the server shows only what the visitor typed: last name, booking number.
    el("h3", {}, [a.person.first_name, a.person.last_name].filter(Boolean).join(" ")),
    el("p", {}, t("approvals.at", { facility: a.facility_name,
      booking: a.person.booking_number }), " ", badge("approval", a.status)),
    el("p", { class: "muted" }, t(`approval.${a.status}.long`)),
    a.reason ? el("p", {}, t("approvals.reason", { reason: a.reason })) : "",
    a.status === "approved" ? el("p", {}, el("a", { class: "button",
      href: `/visitor/book?person_id=${a.person.id}` }, t("approvals.book"))) : "")));
  document.getElementById("approval-none").hidden = approvals.length > 0;
}

/** The facility's booking-number shape under the field: "for example DC-12345". */
async function showNumberFormat() {
  const hint = document.getElementById("find-booking-hint");
  let example = null;
  if (facilitySelect.value) {
    try {
      ({ example } = await api("GET", `/api/facilities/${facilitySelect.value}/directory/format`));
    } catch {
      example = null; // the generic hint will do
    }
  }
  hint.textContent = example ? t("approvals.booking_hint", { example }) : t("approvals.booking_hint_generic");
  bookingNumber.placeholder = example || "";
}

facilitySelect.addEventListener("change", () => showNumberFormat());

try {
  const facilities = await api("GET", "/api/facilities");
  facilitySelect.append(el("option", { value: "" }, t("approvals.choose_facility")),
    ...facilities.map((f) => el("option", { value: String(f.id) }, f.name)));
  if (facilities.length === 1) facilitySelect.value = String(facilities[0].id);
  await showNumberFormat();
  await showRequests();
} catch (error) {
  showFormError(findForm, error);
}

professional.addEventListener("change", () => {
  document.getElementById("bar-box").hidden = professional.value !== "attorney";
});

findForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(findForm);
  requestForm.hidden = true;
  document.getElementById("find-none").hidden = true;
  if (!facilitySelect.value) setFieldError(facilitySelect, t("approvals.error.facility"));
  if (!lastName.value.trim()) setFieldError(lastName, t("approvals.error.last_name"));
  if (!bookingNumber.value.trim()) setFieldError(bookingNumber, t("approvals.error.booking"));
  if (findForm.querySelector("[aria-invalid=true]")) {
    focusFirstProblem(findForm);
    return;
  }
  const query = new URLSearchParams({ last_name: lastName.value.trim(),
    booking_number: bookingNumber.value.trim() });
  try {
    const people = await api("GET", `/api/facilities/${facilitySelect.value}/directory?${query}`);
    found = people[0] || null;
    if (!found) {
      // The notice is itself a status region (read out when shown), right under the form:
      // no floating announcement on top of it.
      const none = document.getElementById("find-none");
      none.hidden = false;
      none.scrollIntoView({ block: "nearest" });
      return;
    }
    const title = document.getElementById("request-title");
    title.textContent = t("approvals.found", { name: found.last_name,
      booking: found.booking_number });
    requestForm.hidden = false;
    title.focus();
  } catch (error) {
    showFormError(findForm, error);
  }
});

requestForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(requestForm);
  if (!relationship.value.trim()) setFieldError(relationship, t("approvals.error.relationship"));
  const attorney = professional.value === "attorney";
  if (attorney && !barNumber.value.trim()) setFieldError(barNumber, t("approvals.error.bar"));
  if (requestForm.querySelector("[aria-invalid=true]")) {
    focusFirstProblem(requestForm);
    return;
  }
  // The directory's handle names the person (valid 30 minutes, for this visitor only).
  const body = { handle: found.handle, relationship: relationship.value.trim(),
    professional: professional.value };
  if (attorney) body.bar_number = barNumber.value.trim();
  try {
    await api("POST", "/api/approvals", body);
    requestForm.hidden = true;
    findForm.reset();
    relationship.value = "";
    await showRequests();
    announce(t("approvals.sent"));
    document.getElementById("mine-title").focus?.();
  } catch (error) {
    if (error instanceof ApiError && invalidFields(error).includes("relationship")) {
      setFieldError(relationship, t("approvals.error.relationship"));
    }
    if (error instanceof ApiError && error.code.startsWith("directory_handle_")) {
      requestForm.hidden = true;
      showFormError(findForm, t("approvals.search_again"));
      lastName.focus();
      return;
    }
    showFormError(requestForm, error);
  }
});

