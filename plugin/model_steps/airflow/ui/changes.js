// Changes a user asks for (pause, resume, rollback, approve, reject): confirmed in a real <dialog>
// first, then sent
// to the API; the router re-renders the model with the outcome.

import { api, describe } from "./api.js";

/** The event this page sends after a change, so the router shows the model as it is now. */
export const CHANGED = "model-steps:changed";

/** Feedback of the last change, shown once on the next render of the model page. */
let notice = null;

/** The outcome of the last change, once: the page shows it after re-rendering. */
export function takeNotice() {
  const last = notice;
  notice = null;
  return last;
}

const CONFIRM = document.getElementById("confirm");

/** Ask before a change, in a real <dialog>; resolves true when the user confirms. */
export async function confirmAction(title, message, action) {
  return (await ask(title, message, action, null)) !== null;
}

/**
 * Ask before a change that records why (approve, reject): resolves to the reason the user gave,
 * "" when they gave none, or null when they cancelled. A required reason blocks the confirm
 * button until there is text.
 */
export function confirmWithReason(title, message, action, { required = false } = {}) {
  return ask(title, message, action, { required });
}

function ask(title, message, action, reason) {
  CONFIRM.querySelector("#confirm-title").textContent = title;
  CONFIRM.querySelector("#confirm-message").textContent = message;
  const button = CONFIRM.querySelector("#confirm-button");
  button.textContent = action;
  const field = CONFIRM.querySelector("#confirm-reason-field");
  const text = CONFIRM.querySelector("#confirm-reason");
  field.hidden = reason === null;
  text.value = "";
  text.required = Boolean(reason?.required);
  CONFIRM.querySelector("#confirm-reason-label").textContent = reason?.required
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
    notice = { ok: true, text: success(result) };
  } catch (error) {
    notice = { ok: false, text: describe(error) };
  }
  window.dispatchEvent(new Event(CHANGED));
}
