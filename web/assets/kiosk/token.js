// The kiosk's device token ("k<id>.<secret>"), kept in this browser's localStorage only.

const TOKEN_KEY = "vv.kiosk.token";
export const TOKEN_PATTERN = /^k\d{1,10}\.[A-Za-z0-9_-]{8,200}$/;

export function savedToken() {
  return localStorage.getItem(TOKEN_KEY);
}

export function saveToken(token) {
  localStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken() {
  localStorage.removeItem(TOKEN_KEY);
}

/**
 * A token handed over in the address's fragment (`/kiosk/#token=k12.xxx`) is saved, then
 * removed from the address bar so it is not left in the history or on screen.
 */
export function takeTokenFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  if (token === null) return null;
  history.replaceState(null, "", location.pathname + location.search);
  if (!TOKEN_PATTERN.test(token)) return null;
  saveToken(token);
  return token;
}
