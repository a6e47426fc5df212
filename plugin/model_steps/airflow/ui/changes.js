// Changes a user asks for (pause, resume, rollback, approve, reject, train): confirmed in a real
// <dialog> with the reason the user gives (it lands in Airflow's audit log), then sent to the
// API; the router re-renders the model with the outcome.

import { api, describe } from "./api.js";

/** The event this page sends after a change, so the router shows the model as it is now. */
export const CHANGED = "model-steps:changed";

/** How long the outcome of a change stays on its model's page (it refreshes itself). */
const NOTICE_MS = 60_000;

/** Feedback of the last change, with the model it concerns and when it came. */
let notice = null;

/** The outcome of the last change on this model, if recent: the page shows it on each render. */
export function noticeFor(name) {
  return notice?.model === name && Date.now() - notice.at < NOTICE_MS ? notice : null;
}

const CONFIRM = document.getElementById("confirm");

/**
 * Ask before a change, in a real <dialog>, and for the reason recorded with it in Airflow's
 * audit log: resolves to the reason the user gave, "" when they gave none, or null when they
 * cancelled. A required reason blocks the confirm button until there is text. ``extra`` is an
 * optional element shown above the reason (a choice that goes with the change).
 */
export function confirmWithReason(title, message, action, { required = false, extra = null } = {}) {
  CONFIRM.querySelector("#confirm-title").textContent = title;
  CONFIRM.querySelector("#confirm-message").textContent = message;
  CONFIRM.querySelector("#confirm-extra").replaceChildren(...(extra ? [extra] : []));
  const button = CONFIRM.querySelector("#confirm-button");
  button.textContent = action;
  const text = CONFIRM.querySelector("#confirm-reason");
  text.value = "";
  text.required = required;
  CONFIRM.querySelector("#confirm-reason-label").textContent = required
    ? "Reason (required)"
    : "Reason (optional)";
  CONFIRM.returnValue = "";
  CONFIRM.showModal();
  return new Promise((resolve) =>
    CONFIRM.addEventListener(
      "close",
      () => resolve(CONFIRM.returnValue === "confirm" ? text.value.trim() : null),
      { once: true },
    ),
  );
}

/** Run a confirmed change, then show the model again with the outcome (or the API's error). */
export async function change(name, request, success) {
  try {
    const result = await api(`models/${encodeURIComponent(name)}/${request.path}`, {
      method: "POST",
      body: request.body,
    });
    notice = { ok: true, text: success(result), model: name, at: Date.now() };
  } catch (error) {
    notice = { ok: false, text: describe(error), model: name, at: Date.now() };
  }
  window.dispatchEvent(new Event(CHANGED));
}
