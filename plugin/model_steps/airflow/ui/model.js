// One model (#/models/<name>): its facts and schedule (pause, resume), its versions, comments,
// details and card.

import { api } from "./api.js";
import { change, confirmAction, takeNotice } from "./changes.js";
import { h } from "./dom.js";
import {
  badge,
  dagFields,
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
  if (!(await confirmAction(`${verb} ${model.name}?`, message, verb))) return;
  await change(
    model.name,
    { path: pause ? "pause" : "resume" },
    (result) =>
      `${pause ? "Paused" : "Resumed"} ${result.dags.map((d) => d.dag_id).join(" and ")}.`,
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
  const notice = takeNotice();
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
