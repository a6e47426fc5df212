// Living in Airflow's frame: its colour mode, its time zone, its router for DAG links.

/** Airflow's window when this page is shown inside it (same origin), else null. */
function airflowWindow() {
  if (window.parent === window) return null;
  try {
    return window.parent.document ? window.parent : null;
  } catch {
    return null;
  }
}

/** Airflow's colour mode: its <html> class, else its stored choice, else the system's. */
function colorMode() {
  const root = airflowWindow()?.document.documentElement;
  if (root?.classList.contains("dark")) return "dark";
  if (root?.classList.contains("light")) return "light";
  const stored = localStorage.getItem("theme");
  if (stored === "dark" || stored === "light") return stored;
  return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

function applyColorMode() {
  document.documentElement.classList.toggle("dark", colorMode() === "dark");
}

/** Re-colour the page the moment the user toggles Airflow's colour mode (or the system's). */
export function followColorMode() {
  applyColorMode();
  const root = airflowWindow()?.document.documentElement;
  if (root)
    new MutationObserver(applyColorMode).observe(root, {
      attributes: true,
      attributeFilter: ["class"],
    });
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", applyColorMode);
  window.addEventListener("storage", applyColorMode);
}

/** Airflow's selected time zone (its "timezone" setting), else the browser's. */
function timeZone() {
  try {
    const zone = JSON.parse(localStorage.getItem("timezone") ?? "null");
    if (typeof zone === "string") return zone;
  } catch {
    // not Airflow's JSON value: fall back to the browser's zone
  }
  return undefined;
}

/** A timestamp as Airflow shows it: "YYYY-MM-DD HH:mm:ss" in the user's chosen zone. */
export function formatTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const options = {
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
  };
  try {
    return new Intl.DateTimeFormat("sv-SE", { ...options, timeZone: timeZone() }).format(date);
  } catch {
    return new Intl.DateTimeFormat("sv-SE", options).format(date);
  }
}

/**
 * Open an Airflow page in Airflow's window. Airflow sandboxes this iframe without top
 * navigation, so a plain target="_top" link is blocked there; Airflow's router follows the
 * parent's history instead. Outside Airflow's frame the link works as written.
 */
export function openInAirflow(event) {
  const host = airflowWindow();
  if (!host) return;
  event.preventDefault();
  const { history } = host;
  const index = history.state?.idx ?? 0;
  const state = { usr: null, key: Math.random().toString(36).slice(2, 10), idx: index + 1 };
  // Airflow's own <base href> holds the path it is served under ("/" or e.g. "/airflow/").
  const path = event.currentTarget.getAttribute("href").replace(/^\//, "");
  history.pushState(state, "", new URL(path, host.document.baseURI));
  host.dispatchEvent(new PopStateEvent("popstate", { state }));
}
