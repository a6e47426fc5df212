// One model (#/models/<name>): its facts and schedule (pause, resume), its versions, comments,
// details and card.

import { api } from "./api.js";
import { change, confirmWithReason, noticeFor } from "./changes.js";
import { h } from "./dom.js";
import {
  badge,
  dagFields,
  dagOf,
  definitionAlert,
  field,
  liveVersion,
  metricsTable,
  scheduleText,
  section,
  storeAlert,
  tagList,
} from "./parts.js";
import { versionsSection } from "./versions.js";

async function pauseOrResume(model, pause) {
  const verb = pause ? "Pause" : "Resume";
  const dags = model.dags.map((d) => d.dag_id).join(" and ");
  const message = pause
    ? `Airflow stops scheduling ${dags}; runs already going finish. Resume to schedule them again.`
    : `Airflow schedules ${dags} again from their next due run.`;
  const reason = await confirmWithReason(`${verb} ${model.name}?`, message, verb);
  if (reason === null) return;
  await change(
    model.name,
    { path: pause ? "pause" : "resume", body: { reason: reason || null } },
    (result) =>
      `${pause ? "Paused" : "Resumed"} ${result.dags.map((d) => d.dag_id).join(" and ")}.`,
  );
}

/** One input per model parameter, filled with its default; the server checks every value. */
function parameterInputs(model) {
  const inputs = Object.entries(model.parameters).map(([name, param]) => {
    const initial = param.default === undefined || param.default === null ? "" : param.default;
    const shown = typeof initial === "string" ? initial : JSON.stringify(initial);
    const input = h("input", { id: `param-${name}`, name, value: shown, autocomplete: "off" });
    return { name, param, input, shown };
  });
  const fields = inputs.map(({ name, param, input }) =>
    h(
      "label",
      { class: "stack", style: "gap: 2px", for: input.id },
      h("span", { class: "label" }, `${name}${param.type ? ` (${param.type})` : ""}`),
      input,
      param.description ? h("span", { class: "muted" }, param.description) : null,
    ),
  );
  return { inputs, element: h("div", { class: "stack", style: "gap: 8px" }, fields) };
}

/** A typed value as the parameter's type reads it; text the type cannot read goes as written. */
function typedValue(param, text) {
  const types = [param.type ?? "string"].flat();
  if (types.includes("number") || types.includes("integer")) {
    const number = Number(text);
    return text.trim() !== "" && Number.isFinite(number) ? number : text;
  }
  if (types.includes("boolean") && ["true", "false"].includes(text)) return text === "true";
  return text;
}

async function trainNow(model) {
  const form = parameterInputs(model);
  const train = dagOf(model, "train");
  const paused = train?.paused
    ? ` ${train.dag_id} is paused: the run waits in the queue until you resume it.`
    : "";
  const message = `Queues a run of ${train?.dag_id ?? "the train DAG"} now. Change a parameter to train with another value; Airflow checks each value against the parameter's rules.${paused}`;
  const reason = await confirmWithReason(`Train ${model.name} now?`, message, "Train", {
    extra: form.element,
  });
  if (reason === null) return;
  const params = Object.fromEntries(
    form.inputs
      .filter(({ input, shown }) => input.value !== shown)
      .map(({ name, param, input }) => [name, typedValue(param, input.value)]),
  );
  await change(
    model.name,
    { path: "train", body: { params, reason: reason || null } },
    (run) => `Started ${run.dag_id} run ${run.run_id}.`,
  );
}

function actions(model) {
  const known = model.dags.filter((d) => d.paused !== null);
  const allPaused = known.length > 0 && known.every((d) => d.paused);
  const nonePaused = known.every((d) => !d.paused);
  const button = (label, pause, disabled) =>
    h(
      "button",
      { class: "button", type: "button", disabled, onClick: () => pauseOrResume(model, pause) },
      label,
    );
  return h(
    "div",
    { class: "row", role: "group", "aria-label": "schedule" },
    button("Pause", true, !known.length || allPaused),
    button("Resume", false, !known.length || nonePaused),
    h(
      "button",
      {
        class: "button solid",
        type: "button",
        disabled: (dagOf(model, "train")?.paused ?? null) === null, // not in Airflow yet
        onClick: () => trainNow(model),
      },
      "Train now",
    ),
  );
}

function overview(model) {
  return h(
    "dl",
    { class: "fields four" },
    field("Domain", model.domain ?? "—"),
    field("Tags", tagList(model.tags) ?? "—"),
    field("Definition version", model.definition_version ?? "—"),
    field("File", h("span", { class: "mono" }, model.file)),
    field("Schedule", ...scheduleText(model)),
    field("Live version", liveVersion(model)),
    ...dagFields(model),
  );
}

function comments(model) {
  if (!model.comments.length) return h("p", { class: "muted" }, "No comments.");
  const newestFirst = [...model.comments].sort((a, b) => b.date.localeCompare(a.date));
  return h(
    "ol",
    { class: "comments" },
    newestFirst.map((c) =>
      h("li", {}, h("div", { class: "label" }, `${c.date} · ${c.author}`), h("p", {}, c.text)),
    ),
  );
}

function keyValues(object) {
  const entries = Object.entries(object);
  if (!entries.length) return h("p", { class: "muted" }, "—");
  return h(
    "dl",
    { class: "fields" },
    entries.map(([key, value]) =>
      field(key, typeof value === "string" ? value : JSON.stringify(value)),
    ),
  );
}

/** Model parameters as Airflow's trigger form knows them: default, type, rules, description. */
function parameters(params) {
  const entries = Object.entries(params);
  if (!entries.length) return h("p", { class: "muted" }, "—");
  const rules = (param) =>
    Object.entries(param)
      .filter(([key]) => !["default", "type", "description"].includes(key))
      .map(([key, value]) => `${key} ${JSON.stringify(value)}`)
      .join(", ");
  return h(
    "table",
    { class: "mini", "aria-label": "parameters" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["name", "default", "type", "rules", "description"].map((t) =>
          h("th", { scope: "col" }, t),
        ),
      ),
    ),
    h(
      "tbody",
      {},
      entries.map(([name, param]) =>
        h(
          "tr",
          {},
          h("th", { scope: "row" }, h("code", {}, name)),
          h("td", {}, JSON.stringify(param.default ?? null)),
          h("td", {}, param.type ?? "—"),
          h("td", {}, rules(param) || "—"),
          h("td", { class: "wrap" }, param.description ?? ""),
        ),
      ),
    ),
  );
}

function details(model) {
  return h(
    "div",
    { class: "stack", style: "gap: 12px" },
    h(
      "dl",
      { class: "fields" },
      field("Intended use", model.intended_use ?? "—"),
      field("Limitations", model.limitations ?? "—"),
      field("License", model.license ?? "—"),
    ),
    h("div", {}, h("h3", {}, "Metadata"), keyValues(model.metadata)),
    h("div", {}, h("h3", {}, "Parameters"), parameters(model.parameters)),
    h(
      "div",
      {},
      h("h3", {}, "Steps"),
      h(
        "ol",
        { class: "markdown" },
        model.steps.map((s) =>
          h(
            "li",
            {},
            h("strong", {}, s.name),
            " ",
            h("code", {}, s.id),
            s.description ? ` — ${s.description}` : "",
          ),
        ),
      ),
    ),
  );
}

// Running infer runs: each step's rows done of rows total, as the run's partitions finish.
async function progressSection(model) {
  const found = await api(`models/${encodeURIComponent(model.name)}/progress`);
  if (!found.runs.length) return null;
  const count = (n) => (n === null ? "?" : n.toLocaleString());
  const line = (s) =>
    h(
      "li",
      {},
      h("code", {}, s.step),
      ` ${count(s.rows_done)} of ${count(s.rows_total)} rows done ` +
        `(${s.partitions_done} of ${s.partitions} partitions)`,
    );
  return section(
    "progress-title",
    "Inference in progress",
    ...found.runs.map((run) =>
      h(
        "div",
        { class: "panel" },
        h("span", { class: "mono" }, run.run_id),
        h("ul", {}, run.steps.map(line)),
      ),
    ),
  );
}

export async function modelPage(name) {
  const model = await api(`models/${encodeURIComponent(name)}`);
  const versions = await versionsSection(model);
  const progress = await progressSection(model).catch(() => null); // the page works without it
  const notice = noticeFor(model.name);
  const feedback = notice
    ? h(
        "div",
        { class: notice.ok ? "alert success" : "alert", role: notice.ok ? "status" : "alert" },
        notice.text,
      )
    : null;
  document.title = `${model.name} · Models · Airflow`;
  return h(
    "div",
    { class: "stack" },
    h(
      "header",
      {},
      h(
        "nav",
        { class: "breadcrumb", "aria-label": "breadcrumb" },
        h("a", { href: "#/" }, "Models"),
        h("span", { "aria-hidden": "true" }, "›"),
        h("span", { "aria-current": "page" }, model.name),
      ),
      h(
        "div",
        { class: "page-header" },
        h("h1", {}, model.name),
        badge(model.status),
        h("span", { title: "schedule status" }, badge(model.schedule_status)),
        h("span", { class: "spacer" }),
        actions(model),
      ),
    ),
    feedback,
    model.description ? h("p", {}, model.description) : null,
    definitionAlert(model),
    storeAlert(model),
    progress,
    overview(model),
    section("metrics-title", "Metrics (live version)", metricsTable(model.metrics)),
    ...versions,
    h(
      "div",
      { class: "columns" },
      section("comments-title", "Comments", h("div", { class: "panel" }, comments(model))),
      section("details-title", "Details", h("div", { class: "panel" }, details(model))),
    ),
  );
}
