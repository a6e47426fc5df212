// The Models page: every model of the DAGs folder (#/) and one model's versions (#/models/<name>).
//
// Airflow's UI shows this page in an iframe of the same origin, so every request carries the
// user's Airflow session cookie: no second login, and the page can follow Airflow's colour mode
// and hand DAG links to Airflow's own router. Plain ES modules, no build step, nothing loaded
// from elsewhere (Airflow may run without internet access).

import { followColorMode } from "./airflow.js";
import { CHANGED } from "./changes.js";
import { h } from "./dom.js";
import { listPage } from "./list.js";
import { modelPage } from "./model.js";
import { alertBox } from "./parts.js";

/** Counts navigations, so a slow answer for a page the user already left is dropped. */
let navigation = 0;

/** How often a page shows Airflow's and the store's news by itself: a model's page often (runs,
 * approvals); the list seldom, since it reads every model's store (thousands in a deployment). */
const REFRESH_MS = { model: 10_000, list: 60_000 };

/** How often the page asks itself whether it is due a refresh. */
const TICK_MS = 5_000;

/** When the page on screen was last shown, so each page keeps its own refresh interval. */
let shownAt = Date.now();

async function route({ refresh = false } = {}) {
  const ticket = ++navigation;
  const match = /^#\/models\/([^/]+)$/.exec(location.hash);
  const name = match ? decodeURIComponent(match[1]) : null;
  const app = document.getElementById("app");
  app.setAttribute("aria-busy", "true");
  let page;
  try {
    page = await (name === null ? listPage() : modelPage(name));
  } catch (error) {
    const back = name === null ? null : h("p", {}, h("a", { href: "#/" }, "Back to the models"));
    page = h(
      "div",
      { class: "stack" },
      h("header", { class: "page-header" }, h("h1", {}, name ?? "Models")),
      alertBox(error),
      back,
    );
  }
  if (ticket !== navigation) return;
  app.replaceChildren(page);
  app.removeAttribute("aria-busy");
  shownAt = Date.now();
  if (!refresh) window.scrollTo(0, 0);
}

/** Whether a refresh now would take something from the user: an open dialog, a field in use. */
function busy() {
  const active = document.activeElement;
  return (
    document.hidden ||
    document.querySelector("dialog[open]") !== null ||
    (active !== null && ["SELECT", "INPUT", "TEXTAREA"].includes(active.tagName))
  );
}

function refresh() {
  const interval = location.hash.startsWith("#/models/") ? REFRESH_MS.model : REFRESH_MS.list;
  if (!busy() && Date.now() - shownAt >= interval - TICK_MS / 2) route({ refresh: true });
}

followColorMode();
window.addEventListener("hashchange", () => route());
window.addEventListener(CHANGED, () => route({ refresh: true }));
setInterval(refresh, TICK_MS);
route();
