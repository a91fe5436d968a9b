// Shared page shell: API calls with the CSRF header, translations, header and navigation,
// language switch, live-region announcements and small DOM helpers. No framework, no build step.

const LANGS = ["en", "es"];
const LANG_KEY = "vv.lang";
const HOME_BY_ROLE = {
  visitor: "/visitor/",
  officer: "/officer/",
  facility_admin: "/admin/",
  agency_admin: "/admin/",
};

const state = { lang: "en", strings: {}, siteName: "", session: null, csrf: "", announceTimer: 0 };

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || "http_" + status;
    this.details = details || null;
  }
}

/** The page language: the saved choice, else the browser's, else English. */
export function lang() {
  return state.lang;
}

function pickLang() {
  const saved = localStorage.getItem(LANG_KEY);
  if (saved && LANGS.includes(saved)) return saved;
  for (const wanted of navigator.languages || [navigator.language || "en"]) {
    const base = String(wanted).slice(0, 2).toLowerCase();
    if (LANGS.includes(base)) return base;
  }
  return "en";
}

/**
 * Translate a key; `{name}` placeholders are filled from vars. Unknown keys show the key.
 * With a numeric `count`, the language's plural form `key.<category>` is used (categories of
 * Intl.PluralRules: "one", "other", ...; "1 minute", "2 minutes", "1 minuto").
 */
export function t(key, vars = {}) {
  let text = state.strings[key];
  if (typeof vars.count === "number") {
    const category = new Intl.PluralRules(state.lang).select(vars.count);
    text = state.strings[`${key}.${category}`] ?? state.strings[`${key}.other`] ?? text;
  }
  return (text ?? key).replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

/** The installation's name (the agency's or facility's, from the server), else the default. */
export function siteName() {
  return state.siteName || t("app.name");
}

async function loadSite() {
  try {
    const response = await fetch("/api/site", { credentials: "same-origin" });
    return response.ok ? await response.json() : null;
  } catch {
    return null; // offline: the default name will do
  }
}

async function loadStrings(area, language) {
  const files = [`/i18n/common.${language}.json`];
  if (area) files.push(`/i18n/${area}.${language}.json`);
  const parts = await Promise.all(
    files.map(async (url) => {
      const response = await fetch(url, { credentials: "same-origin" });
      return response.ok ? response.json() : {};
    }),
  );
  return Object.assign({}, ...parts);
}

/** Apply translations to `[data-i18n]` text and `[data-i18n-attr="attr:key,attr2:key2"]`. */
export function translate(root = document) {
  for (const node of root.querySelectorAll("[data-i18n]")) {
    node.textContent = t(node.dataset.i18n);
  }
  for (const node of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of node.dataset.i18nAttr.split(",")) {
      const [attr, key] = pair.split(":").map((s) => s.trim());
      if (attr && key) node.setAttribute(attr, t(key));
    }
  }
}

async function request(method, path, body, contentType) {
  const headers = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
  let payload;
  if (body !== undefined && body !== null) {
    if (contentType) {
      headers["Content-Type"] = contentType;
      payload = body;
    } else {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
  } catch (error) {
    throw new ApiError(0, "network", t("error.network"));
  }
  if (!response.ok) {
    let code = "";
    let message = "";
    let details = null;
    try {
      const data = await response.json();
      code = data?.error?.code || "";
      message = data?.error?.message || "";
      details = data?.error?.details || null;
    } catch (ignored) {
      // Not JSON: keep the status alone.
    }
    throw new ApiError(response.status, code, message, details);
  }
  return response;
}

/** Call a JSON endpoint; resolves with the parsed body (or null for 204). */
export async function api(method, path, body) {
  const response = await request(method, path, body);
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** Send a raw body (e.g. an image upload) or read a raw response; resolves with the Response. */
export async function apiRaw(method, path, body, contentType) {
  return request(method, path, body, contentType);
}

/** Remember a fresh session (after sign-in) so later calls carry its CSRF token. */
export function setSession(session) {
  state.session = session;
  state.csrf = session?.csrf_token || "";
}

/** Use a CSRF token without a session (the pending second step of a staff sign-in). */
export function useCsrf(token) {
  state.csrf = token || "";
}

export function session() {
  return state.session;
}

async function loadSession() {
  try {
    setSession(await api("GET", "/api/auth/session"));
  } catch (error) {
    if (!(error instanceof ApiError) || (error.status !== 401 && error.status !== 403)) throw error;
    setSession(null);
  }
  return state.session;
}

export function homeFor(role) {
  return HOME_BY_ROLE[role] || "/";
}

/** `el("button", {type: "button", class: "primary", onclick: fn}, "Text")`. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      node.className = value;
    } else if (name === "dataset") {
      Object.assign(node.dataset, value);
    } else if (value === true) {
      node.setAttribute(name, "");
    } else {
      node.setAttribute(name, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Say something to screen-reader users (and show it in the status bar). */
export function announce(text) {
  const region = document.getElementById("vv-status");
  if (!region) return;
  region.textContent = "";
  clearTimeout(state.announceTimer);
  // A fresh text node after a tick makes screen readers repeat identical messages; the toast
  // clears itself so it never sits over the page's controls.
  setTimeout(() => {
    region.textContent = text;
    state.announceTimer = setTimeout(() => {
      region.textContent = "";
    }, 8000);
  }, 30);
}

/** The message to show for an API error, translated by its code when we know it. */
export function errorText(error) {
  if (error instanceof ApiError) {
    const key = `error.${error.code}`;
    const known = t(key);
    if (known !== key) return known;
    return error.message || t("error.generic");
  }
  return t("error.generic");
}

/** Show an error in an element (role=alert) and link it to the control it belongs to. */
export function showError(target, error, control) {
  const node = typeof target === "string" ? document.getElementById(target) : target;
  if (!node) return;
  node.textContent = error ? errorText(error) : "";
  node.hidden = !error;
  if (control) {
    // Keep the control's other descriptions (hints): add or remove only the error's id.
    const ids = (control.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean);
    const others = ids.filter((id) => id !== node.id);
    if (error) {
      control.setAttribute("aria-invalid", "true");
      control.setAttribute("aria-describedby", [...others, node.id].join(" "));
    } else {
      control.removeAttribute("aria-invalid");
      if (others.length) control.setAttribute("aria-describedby", others.join(" "));
      else control.removeAttribute("aria-describedby");
    }
  }
}

const dateCache = new Map();
function formatter(options, timeZone) {
  const key = JSON.stringify([state.lang, timeZone || "", options]);
  if (!dateCache.has(key)) {
    dateCache.set(key, new Intl.DateTimeFormat(state.lang, { ...options, timeZone }));
  }
  return dateCache.get(key);
}

export function fmtDateTime(iso, timeZone) {
  const options = { dateStyle: "medium", timeStyle: "short" };
  return formatter(options, timeZone).format(new Date(iso));
}

export function fmtDate(iso, timeZone) {
  return formatter({ dateStyle: "medium" }, timeZone).format(new Date(iso));
}

export function fmtTime(iso, timeZone) {
  return formatter({ timeStyle: "short" }, timeZone).format(new Date(iso));
}

/** "mm:ss" (or "h:mm:ss") for a number of seconds. */
export function fmtDuration(seconds) {
  const total = Math.max(0, Math.round(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

const ACTIVE_VISIT_STATES = new Set(["scheduled", "ready", "live"]);
// Closer than this to its start, a visit says "Starts in 4:05"; further away, "Booked".
const STARTS_IN_WITHIN_MS = 3600 * 1000;

/**
 * Where an active visit stands, in the same words on every page (the officer's tiles and
 * lists, the visitor's lists, the call page): "Booked", "Starts in 4:05" (within the hour
 * before its start), "Starting" (from the start until both sides are in the call),
 * "In progress" (live), "Over" (its time is up). `now` is in ms, by the server's clock where
 * the page knows it. Null for a visit that ended (each page names its end state).
 */
export function visitPhase(state, startIso, endIso, now = Date.now()) {
  if (!ACTIVE_VISIT_STATES.has(state)) return null;
  const start = Date.parse(startIso);
  if (now >= Date.parse(endIso)) return t("visit.phase.over");
  if (state === "live") return t("visit.phase.live");
  if (now < start) {
    if (start - now > STARTS_IN_WITHIN_MS) return t("visit.phase.booked");
    return t("visit.phase.startsIn", { time: fmtDuration(Math.ceil((start - now) / 1000)) });
  }
  return t("visit.phase.starting");
}

/** ws:// or wss:// URL for a path on this server. */
export function wsUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

function navLinks(role) {
  const links = {
    visitor: [
      ["/visitor/", "nav.visitor.home"],
      ["/visitor/book", "nav.visitor.book"],
      ["/visitor/visits", "nav.visitor.visits"],
      ["/visitor/profile", "nav.visitor.profile"],
    ],
    officer: [
      ["/officer/", "nav.officer.live"],
      ["/officer/kiosks", "nav.officer.kiosks"],
      ["/officer/schedule", "nav.officer.schedule"],
      ["/officer/recordings", "nav.officer.recordings"],
      ["/mfa", "nav.mfa"],
    ],
  };
  const admin = [
    ["/admin/", "nav.admin.home"],
    ["/admin/approvals", "nav.admin.approvals"],
    ["/admin/people", "nav.admin.people"],
    ["/admin/rules", "nav.admin.rules"],
    ["/admin/kiosks", "nav.admin.kiosks"],
    ["/admin/staff", "nav.admin.staff"],
    ["/admin/reports", "nav.admin.reports"],
    ["/admin/audit", "nav.admin.audit"],
    ["/officer/", "nav.officer.live"],
    ["/officer/recordings", "nav.officer.recordings"],
    ["/mfa", "nav.mfa"],
  ];
  return links[role] || (role === "facility_admin" || role === "agency_admin" ? admin : []);
}

/** End every session of this account (every device), this one too; then the sign-in page. */
export async function signOutEverywhere() {
  await api("POST", "/api/auth/logout-everywhere", {});
  setSession(null);
  location.href = "/signin";
}

function renderHeader(area) {
  const header = document.querySelector("header.vv-header") || el("header", { class: "vv-header" });
  header.replaceChildren();
  // On a kiosk the brand leads back to the kiosk screen: nobody walks off it to the site.
  const brand = el("a", { class: "vv-brand", href: area === "kiosk" ? "/kiosk/" : "/" }, siteName());
  const tools = el("div", { class: "vv-tools" });
  const select = el(
    "select",
    {
      id: "vv-lang",
      "aria-label": t("lang.label"),
      onchange: async (event) => {
        localStorage.setItem(LANG_KEY, event.target.value);
        // Staff have no profile page: their picker also sets the language of their e-mails.
        // (Visitors choose that on their profile.)
        if (state.session && state.session.account.role !== "visitor") {
          await api("PUT", "/api/auth/language", { language: event.target.value }).catch(() => {});
        }
        location.reload();
      },
    },
    LANGS.map((code) => el("option", { value: code, selected: code === state.lang }, t(`lang.${code}`))),
  );
  tools.append(select);
  const role = state.session?.account?.role;
  if (state.session && area !== "kiosk") {
    tools.append(
      el("span", { class: "vv-who" }, state.session.account.email || ""),
      el(
        "button",
        {
          type: "button",
          class: "link",
          onclick: async () => {
            try {
              await api("POST", "/api/auth/logout", {});
            } finally {
              location.href = "/signin";
            }
          },
        },
        t("nav.signout"),
      ),
    );
    // Staff have no profile page: the header offers signing out of every device.
    if (role && role !== "visitor") {
      tools.append(
        el(
          "button",
          {
            type: "button",
            class: "link",
            id: "vv-signout-everywhere",
            onclick: () => signOutEverywhere().catch((error) => announce(errorText(error))),
          },
          t("nav.signout_everywhere"),
        ),
      );
    }
  }
  header.append(el("a", { class: "vv-skip", href: "#main" }, t("nav.skip")), brand);
  const links = navLinks(role);
  if (links.length && area !== "kiosk") {
    const here = location.pathname;
    header.append(
      el(
        "nav",
        { "aria-label": t("nav.label") },
        el(
          "ul",
          {},
          links.map(([href, key]) =>
            el("li", {}, el("a", { href, "aria-current": here === href ? "page" : false }, t(key))),
          ),
        ),
      ),
    );
  }
  header.append(tools);
  if (!header.isConnected) document.body.prepend(header);
}

function ensureStatusRegion() {
  if (document.getElementById("vv-status")) return;
  document.body.append(el("div", { id: "vv-status", class: "vv-status", role: "status" }));
}

/**
 * Set up a page: language, translations, header, session check.
 * `roles`: who may see the page ([] or undefined = anyone); others go to /signin?next=...
 * Resolves with the session (or null when signed out).
 */
export async function initPage({ area = "", titleKey = "", roles = [], needsSession = true } = {}) {
  state.lang = pickLang();
  document.documentElement.lang = state.lang;
  const [strings, site] = await Promise.all([loadStrings(area, state.lang), loadSite()]);
  state.strings = strings;
  state.siteName = site?.name || "";
  const current = needsSession ? await loadSession() : null;
  const role = current?.account?.role;
  if (roles.length && !roles.includes(role)) {
    const next = encodeURIComponent(location.pathname + location.search);
    location.replace(`/signin?next=${next}`);
    return new Promise(() => {});
  }
  if (titleKey) document.title = `${t(titleKey)} · ${siteName()}`;
  renderHeader(area);
  ensureStatusRegion();
  translate();
  keyboardScrollBoxes();
  registerServiceWorker();
  return current;
}

/**
 * Wide tables scroll sideways inside their `.table-wrap` box on phones. Keyboard users must be
 * able to reach that scrolling too: each box becomes a focusable, named region (its table's
 * caption, else the section heading), also when a page adds its tables later.
 */
function keyboardScrollBoxes() {
  const name = (box) => box.querySelector("caption")?.textContent
    || box.closest("section")?.querySelector("h2, h3")?.textContent
    || t("common.table");
  const mark = () => {
    for (const box of document.querySelectorAll(".table-wrap")) {
      if (!box.hasAttribute("tabindex")) box.setAttribute("tabindex", "0");
      if (!box.hasAttribute("role")) box.setAttribute("role", "region");
      const label = name(box).trim();
      if (box.getAttribute("aria-label") !== label) box.setAttribute("aria-label", label);
    }
  };
  mark();
  new MutationObserver(mark).observe(document.body, { childList: true, subtree: true });
}

function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return;
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {
    // Pages work without it; installability just waits for the next load.
  });
}
