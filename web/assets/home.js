import { homeFor, initPage } from "/assets/core.js";

const current = await initPage({ area: "", titleKey: "home.title" });
if (current && new URLSearchParams(location.search).get("stay") === null) {
  location.replace(homeFor(current.account.role));
}
