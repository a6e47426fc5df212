// Pieces both pages show: badges, run states, DAG links, tags, metrics, labelled fields.

import { describe } from "./api.js";
import { formatTime, openInAirflow } from "./airflow.js";
import { h } from "./dom.js";

export function alertBox(error) {
  return h("div", { class: "alert", role: "alert" }, describe(error));
}

const TONES = {
  deployed: "green",
  active: "green",
  "partly paused": "amber",
  paused: "gray",
  undeployed: "gray",
  "not in Airflow yet": "blue",
  live: "green",
  published: "blue",
  pending: "amber",
  refused: "red",
  rejected: "red",
  degraded: "red",
  healthy: "green",
};

export function badge(text, tone = TONES[text] ?? "gray") {
  return h("span", { class: `badge ${tone}` }, text);
}

function runState(run) {
  if (!run) return h("span", { class: "muted" }, "no runs yet");
  const state = run.state ?? "none";
  return h(
    "span",
    { class: "row", title: run.run_id },
    airflowLink(run.url, h("span", { class: `state ${state}` }, state), {
      "aria-label": `${state} run ${run.run_id}`,
    }),
    h("span", { class: "muted" }, formatTime(run.start_date ?? run.run_after)),
    taskProgress(run),
  );
}

/** A running run's progress: its task instances finished of all of them. */
function taskProgress(run) {
  const counts = Object.entries(run.task_states ?? {});
  if (!counts.length) return null;
  const total = counts.reduce((sum, [, n]) => sum + n, 0);
  const finished = ["success", "skipped", "failed", "upstream_failed", "removed"];
  const done = counts.filter(([state]) => finished.includes(state)).reduce((s, [, n]) => s + n, 0);
  return h("span", { class: "muted", "aria-label": "progress" }, `${done} of ${total} tasks done`);
}

/** A failed run's failed tasks: each a link to its log in Airflow, with its one-line reason. */
function failedTasks(run) {
  if (!run?.failed_tasks?.length) return null;
  return h(
    "ul",
    { class: "plain failures", "aria-label": `failed tasks of ${run.run_id}` },
    run.failed_tasks.map((task) => {
      const name = task.map_index === null ? task.task_id : `${task.task_id}[${task.map_index}]`;
      return h(
        "li",
        {},
        airflowLink(task.url, name, { "aria-label": `log of ${name}` }),
        task.reason ? h("span", { class: "reason" }, `: ${task.reason}`) : null,
      );
    }),
  );
}

/** A link to a page of Airflow's own UI (a DAG, a run's grid, a task's log), opened there. */
export function airflowLink(url, content, props = {}) {
  return h("a", { href: url, target: "_top", onClick: openInAirflow, ...props }, content);
}

export function dagLink(dag) {
  return airflowLink(dag.url, dag.dag_id);
}

/** The model's train or infer DAG, if it has one. */
export function dagOf(model, kind) {
  return model.dags.find((dag) => dag.kind === kind);
}

function dagState(dag) {
  const paused =
    dag.paused === null ? badge("not in Airflow yet") : badge(dag.paused ? "paused" : "active");
  return h(
    "div",
    { class: "stack", style: "gap: 2px" },
    h("span", { class: "row" }, dagLink(dag), paused),
    runState(dag.last_run),
    failedTasks(dag.last_run),
  );
}

const TAG_ICON =
  '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true"><path d="M12.6 2.6A2 2 0 0 0 11.2 2H4a2 2 0 0 0-2 2v7.2a2 2 0 0 0 .6 1.4l8.7 8.7a2.4 2.4 0 0 0 3.4 0l6.6-6.6a2.4 2.4 0 0 0 0-3.4z"/><circle cx="7.5" cy="7.5" r=".5" fill="currentColor"/></svg>';

export function tagList(tags) {
  if (!tags.length) return null;
  const list = h("span", { class: "tags", "aria-label": "tags" }, tags.join(", "));
  list.insertAdjacentHTML("afterbegin", TAG_ICON);
  return list;
}

export function formatMetric(value) {
  return typeof value === "number" ? value.toFixed(4) : "—";
}

/** "test.accuracy"-style names of every metric in some versions, test split first. */
export function metricNames(metricsList) {
  const names = new Set();
  for (const metrics of metricsList) {
    for (const [split, values] of Object.entries(metrics))
      for (const name of Object.keys(values)) names.add(`${split}.${name}`);
  }
  const rank = (name) => (name.startsWith("test.") ? 0 : name.startsWith("train.") ? 1 : 2);
  return [...names].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

export function metricValue(metrics, name) {
  const [split, ...rest] = name.split(".");
  return metrics[split]?.[rest.join(".")];
}

/** The live version's metrics as a small table: one row per metric, one column per split. */
export function metricsTable(metrics) {
  const splits = Object.keys(metrics).sort((a, b) =>
    a === "test" ? -1 : b === "test" ? 1 : a.localeCompare(b),
  );
  const names = [...new Set(splits.flatMap((split) => Object.keys(metrics[split])))].sort();
  if (!names.length) return h("span", { class: "muted" }, "—");
  return h(
    "table",
    { class: "mini", "aria-label": "metrics" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col" }, "metric"),
        splits.map((split) => h("th", { scope: "col", class: "number" }, split)),
      ),
    ),
    h(
      "tbody",
      {},
      names.map((name) =>
        h(
          "tr",
          {},
          h("th", { scope: "row" }, name),
          splits.map((split) => h("td", { class: "number" }, formatMetric(metrics[split][name]))),
        ),
      ),
    ),
  );
}

export function field(label, ...value) {
  return h("div", {}, h("dt", {}, label), h("dd", {}, ...value));
}

/** The model's DAGs as fields: link, pause state and last run. */
export function dagFields(model) {
  const [train, infer, evaluate] = ["train", "infer", "evaluate"].map((k) => dagOf(model, k));
  return [
    field("Train DAG", train ? dagState(train) : "—"),
    field("Infer DAG", infer ? dagState(infer) : h("span", { class: "muted" }, "no infer DAG")),
    evaluate ? field("Evaluate DAG", dagState(evaluate)) : null,
  ];
}

/** A model whose file is broken: it stands as its last good definition until the file is fixed. */
export function definitionAlert(model) {
  const problems = model.definition_problems ?? [];
  if (!problems.length) return null;
  return h(
    "div",
    { class: "alert", role: "alert" },
    h(
      "p",
      {},
      `${model.file} is broken: Airflow runs, and this page shows, its last good definition until the file is fixed. Versions, rollback and serving work from the store.`,
    ),
    h(
      "ul",
      { "aria-label": "problems of the definition file" },
      problems.map((p) => h("li", { class: "mono" }, p.text)),
    ),
  );
}

/** Why the model's versions cannot be shown right now (its store alone is down). */
export function storeAlert(model) {
  if (!model.store_error) return null;
  return h("p", { class: "alert", role: "alert" }, `Store unavailable: ${model.store_error}`);
}

/** Each DAG's schedule as written ("manual" for none); evaluate only for models that have it. */
export function scheduleText(model) {
  const { schedule } = model;
  const lines = [`train: ${schedule.train ?? "manual"}`, h("br"), `infer: ${schedule.infer ?? "manual"}`];
  if (dagOf(model, "evaluate")) lines.push(h("br"), `evaluate: ${schedule.evaluate ?? "manual"}`);
  return lines;
}

export function liveVersion(model) {
  if (model.store_error) return h("span", { class: "badge red" }, "store unavailable");
  if (model.live_version === null) return h("span", { class: "muted" }, "none published yet");
  return [
    h("strong", {}, `v${model.live_version}`),
    ` of ${model.versions}`,
    h("br"),
    h("span", { class: "muted" }, formatTime(model.published_at)),
  ];
}

export function section(id, title, ...content) {
  return h(
    "section",
    { class: "stack", style: "gap: 8px", "aria-labelledby": id },
    h("div", { class: "section-title" }, h("h2", { id }, title)),
    ...content,
  );
}
