// The Models API, called with the user's Airflow session cookie (same origin: no second login).

const API = new URL("../", document.baseURI);

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

/** JSON from the Models API; an error carries the API's own message ({"detail": ...}). */
export async function api(path, { method = "GET", body } = {}) {
  // A change is always JSON (the API refuses anything else, so no other site's form can
  // forge one); {} when it takes no arguments.
  const payload = method === "GET" ? undefined : JSON.stringify(body ?? {});
  let response;
  try {
    response = await fetch(new URL(path, API), {
      method,
      credentials: "same-origin",
      headers:
        payload === undefined
          ? { Accept: "application/json" }
          : { Accept: "application/json", "Content-Type": "application/json" },
      body: payload,
    });
  } catch (error) {
    throw new ApiError(0, `cannot reach Airflow's API server (${error.message})`);
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok)
    throw new ApiError(response.status, detailText(answer.detail) ?? response.statusText);
  return answer;
}

function detailText(detail) {
  if (detail === undefined || detail === null) return null;
  return typeof detail === "string" ? detail : JSON.stringify(detail);
}

/** What the user should read for a failed request, and what they can do about it. */
export function describe(error) {
  if (!(error instanceof ApiError)) return String(error);
  switch (error.status) {
    case 401:
      return `Your Airflow session has ended (${error.message}): reload the page to sign in again.`;
    case 403:
      return `You need edit permission on both of the model's DAGs to do this: ${error.message}`;
    default:
      return error.message;
  }
}
