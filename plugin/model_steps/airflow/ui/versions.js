// A model's versions: a table with each version's status (live, published, waiting for approval,
// refused by the gate, rejected), its metrics and what can be done with it (roll back, approve,
// reject, read its card); the gate's comparison; a chart of a metric across versions; and the
// live version's evaluations on fresh data over time.

import { formatTime } from "./airflow.js";
import { api } from "./api.js";
import { change, confirmWithReason } from "./changes.js";
import { chart, timeline } from "./chart.js";
import { comparePanel } from "./compare.js";
import { h } from "./dom.js";
import { markdown } from "./markdown.js";
import {
  alertBox,
  airflowLink,
  badge,
  dagLink,
  dagOf,
  formatMetric,
  metricNames,
  metricValue,
  section,
} from "./parts.js";

/** The chart's metric per model, kept across re-renders. */
const chosenMetric = new Map();
/** The evaluations chart's metric per model. */
const chosenEvaluation = new Map();

/** The rollback dialog's choice to run inference now, for a model that has an infer DAG. */
function inferChoice(model, version) {
  const infer = dagOf(model, "infer");
  if (!infer) return null;
  const box = h("input", { type: "checkbox", id: "rollback-infer" });
  const label = h(
    "label",
    { class: "row", for: "rollback-infer" },
    box,
    `Start ${infer.dag_id} now with version ${version}`,
  );
  return { box, label };
}

async function rollback(model, version, current) {
  const choice = inferChoice(model, version);
  const inference = choice
    ? " A rollback is not a new version: inference scheduled on new versions does not start by itself; tick the box to start it now."
    : "";
  const message = `Handlers serving ${model.name} switch from version ${current} to version ${version} on their next poll. Nothing is deleted; a new training publishes a newer version as usual.${inference}`;
  const reason = await confirmWithReason(
    `Roll back ${model.name} to version ${version}?`,
    message,
    "Roll back",
    { extra: choice?.label },
  );
  if (reason === null) return;
  const infer = Boolean(choice?.box.checked);
  await change(
    model.name,
    { path: "rollback", body: { version, reason: reason || null, infer } },
    (result) =>
      `${result.model} now serves version ${result.version} (was ${result.previous ?? "none"}).` +
      (result.infer_run ? ` Started ${result.infer_run.dag_id} run ${result.infer_run.run_id}.` : ""),
  );
}

async function approve(model, version) {
  const message = `Version ${version} passed the gate's rules and waits for a person. Approving it records your name and makes it the live version: handlers load it on their next poll, and DAGs scheduled on new versions run.`;
  const reason = await confirmWithReason(
    `Approve version ${version} of ${model.name}?`,
    message,
    "Approve",
  );
  if (reason === null) return;
  await change(
    model.name,
    { path: `versions/${version}/approve`, body: { reason: reason || null } },
    (result) =>
      `Version ${result.version} approved by ${result.by}; the live version is now ${result.live_version ?? "none"}.`,
  );
}

async function reject(model, version) {
  const message = `Version ${version} is kept with your reason and is never served. Say why, for whoever trains the next one.`;
  const reason = await confirmWithReason(
    `Reject version ${version} of ${model.name}?`,
    message,
    "Reject",
    { required: true },
  );
  if (!reason) return;
  await change(
    model.name,
    { path: `versions/${version}/reject`, body: { reason } },
    (result) => `Version ${result.version} rejected by ${result.by}.`,
  );
}

/** A short button whose accessible name says which version it acts on. */
function button(label, name, onClick, tone = "") {
  return h(
    "button",
    { class: `button small ${tone}`, type: "button", "aria-label": name, title: name, onClick },
    label,
  );
}

/** The row's actions, first in the row so they never scroll out of a narrow page. */
function versionActions(model, version, listing, showCard) {
  const v = version.version;
  const buttons = [];
  if (version.status === "pending") {
    buttons.push(
      button("Approve", `Approve v${v}`, () => approve(model, v), "solid"),
      button("Reject", `Reject v${v}`, () => reject(model, v)),
    );
  }
  if (version.status === "published") {
    buttons.push(
      button("Roll back", `Roll back to v${v}`, () => rollback(model, v, listing.current)),
    );
  }
  buttons.push(button("Card", "Card", () => showCard(v)));
  return h("div", { class: "row actions" }, buttons);
}

/** The parameters a version was trained with, one "name=value" a line. */
function parameterList(parameters) {
  const entries = Object.entries(parameters);
  if (!entries.length) return h("span", { class: "muted" }, "—");
  return h(
    "ul",
    { class: "plain", "aria-label": "parameters" },
    entries.map(([name, value]) => h("li", {}, h("code", {}, `${name}=${JSON.stringify(value)}`))),
  );
}

/** What an evaluation could not check on its version (a drift check skipped...), if anything. */
function skippedNote(evaluation) {
  const skipped = evaluation?.skipped_checks ?? [];
  if (!skipped.length) return null;
  return h("div", { class: "note", role: "note" }, `Check skipped: ${skipped.join("; ")}`);
}

/**
 * What was decided about a version: a person's approval or rejection when there is one (the
 * gate's "pending" is only the state at staging time), else the gate's own outcome.
 */
function gateOutcome(version) {
  const decision = version.decision;
  if (!decision) return `Gate: ${version.gate.outcome}`;
  return `Gate: ${decision.action} by ${decision.by}, ${formatTime(decision.at)}`;
}

/** The gate's numbers for one version: each rule with the candidate's and the live side. */
function gateDetails(version) {
  const gate = version.gate;
  if (!gate || !gate.rules.length) return null;
  const result = (passed) =>
    passed === null ? badge("not applicable") : badge(passed ? "passed" : "failed", passed ? "green" : "red");
  return h(
    "details",
    { class: "gate" },
    h("summary", {}, gateOutcome(version)),
    gate.live_version === null
      ? h("p", { class: "muted" }, "Nothing was live to compare with.")
      : h("p", { class: "muted" }, `Compared with live version ${gate.live_version} on this run's test split.`),
    gate.live_error ? h("p", { class: "alert" }, gate.live_error) : null,
    h(
      "table",
      { class: "mini", "aria-label": `gate of version ${version.version}` },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["rule", "candidate", "live", "threshold", "result"].map((t) =>
            h("th", { scope: "col" }, t),
          ),
        ),
      ),
      h(
        "tbody",
        {},
        gate.rules.map((r) =>
          h(
            "tr",
            {},
            h("th", { scope: "row" }, h("code", {}, r.rule)),
            h("td", { class: "number" }, formatMetric(r.candidate)),
            h("td", { class: "number" }, formatMetric(r.live)),
            h("td", { class: "number" }, formatMetric(r.threshold)),
            h("td", {}, result(r.passed)),
          ),
        ),
      ),
    ),
  );
}

function versionsTable(model, listing, showCard) {
  const names = metricNames(listing.versions.map((v) => v.metrics));
  const row = (version) =>
    h(
      "tr",
      {
        class: version.is_current ? "current" : null,
        "aria-current": version.is_current ? "true" : null,
        "data-status": version.status,
      },
      h("td", {}, versionActions(model, version, listing, showCard)),
      h(
        "td",
        {},
        h("strong", {}, `v${version.version}`),
        version.definition_version
          ? h("div", { class: "muted", title: "definition version" }, version.definition_version)
          : null,
      ),
      h(
        "td",
        { class: "wrap" },
        badge(version.status),
        version.reason ? h("div", { class: "muted reason" }, version.reason) : null,
        gateDetails(version),
        skippedNote(version.evaluations.at(-1)),
      ),
      h("td", { class: "wrap" }, formatTime(version.published_at)),
      h(
        "td",
        { class: "run" },
        airflowLink(version.run_url, version.run_id, {
          class: "mono truncate",
          title: version.run_id,
          "aria-label": `training run of v${version.version}`,
        }),
      ),
      h("td", { class: "wrap" }, parameterList(version.parameters)),
      names.map((name) =>
        h("td", { class: "number" }, formatMetric(metricValue(version.metrics, name))),
      ),
    );
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { "aria-label": "versions" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, "Actions"),
          ["Version", "Status", "Published", "Run", "Parameters"].map((t) =>
            h("th", { scope: "col" }, t),
          ),
          names.map((n) => h("th", { scope: "col", class: "number" }, n)),
        ),
      ),
      h("tbody", {}, listing.versions.map(row)),
    ),
  );
}

function metricChooser(id, names, chosen, onChange) {
  return h(
    "div",
    { class: "row" },
    h("label", { for: id, class: "label" }, "Metric"),
    h(
      "select",
      { id, onChange: (event) => onChange(event.target.value) },
      names.map((name) => h("option", { value: name, selected: name === chosen }, name)),
    ),
  );
}

function chartPanel(model, listing) {
  const names = metricNames(listing.versions.map((v) => v.metrics));
  if (!names.length) return h("p", { class: "muted" }, "No metrics recorded yet.");
  const chosen = names.includes(chosenMetric.get(model.name))
    ? chosenMetric.get(model.name)
    : names[0];
  const holder = h("div", {}, chart(listing.versions, chosen, listing.current));
  const chooser = metricChooser("metric", names, chosen, (name) => {
    chosenMetric.set(model.name, name);
    holder.replaceChildren(chart(listing.versions, name, listing.current));
  });
  return h("div", { class: "stack", style: "gap: 8px" }, chooser, holder);
}

/** Every evaluation of every version, oldest first, each knowing its version. */
function evaluationsOf(listing) {
  return listing.versions
    .flatMap((v) => v.evaluations.map((e) => ({ ...e, version: v.version })))
    .sort((a, b) => a.evaluated_at.localeCompare(b.evaluated_at));
}

function evaluationsPanel(model, listing) {
  const evaluations = evaluationsOf(listing);
  const names = [...new Set(evaluations.flatMap((e) => Object.keys(e.metrics)))].sort();
  const chosen = names.includes(chosenEvaluation.get(model.name))
    ? chosenEvaluation.get(model.name)
    : names[0];
  const holder = h("div", {}, timeline(evaluations, chosen));
  const chooser = metricChooser("evaluation-metric", names, chosen, (name) => {
    chosenEvaluation.set(model.name, name);
    holder.replaceChildren(timeline(evaluations, name));
  });
  const rows = [...evaluations].reverse().map((e) =>
    h(
      "tr",
      { "data-degraded": String(e.degraded) },
      h("td", {}, airflowLink(e.url, formatTime(e.evaluated_at))),
      h("td", {}, `v${e.version}`),
      h("td", { class: "number" }, String(e.row_count)),
      h(
        "td",
        { class: "wrap" },
        Object.entries(e.metrics)
          .map(([name, value]) => `${name} ${formatMetric(value)}`)
          .join(", "),
      ),
      h(
        "td",
        { class: "wrap" },
        badge(e.degraded ? "degraded" : "healthy"),
        e.reasons.length ? h("div", { class: "muted reason" }, e.reasons.join("; ")) : null,
        skippedNote(e),
      ),
    ),
  );
  return h(
    "div",
    { class: "stack", style: "gap: 8px" },
    names.length ? chooser : null,
    holder,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { "aria-label": "evaluations" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Evaluated", "Version", "Rows", "Metrics", "Verdict"].map((t) =>
              h("th", { scope: "col" }, t),
            ),
          ),
        ),
        h("tbody", {}, rows),
      ),
    ),
  );
}

/** The card of one version, loaded when asked for (the live one first). */
function cardPanel(model, listing) {
  const holder = h("div", { class: "panel markdown", id: "card" });
  const title = h("h2", { id: "card-title" }, "Model card");
  const show = async (version) => {
    title.textContent = `Model card of version ${version}`;
    holder.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    try {
      const found = await api(`models/${encodeURIComponent(model.name)}/versions/${version}/card`);
      holder.replaceChildren(...markdown(found.card));
    } catch (error) {
      holder.replaceChildren(alertBox(error));
    }
  };
  const first = listing.current ?? listing.versions[0]?.version;
  if (first !== undefined) show(first);
  const panel = h(
    "section",
    { class: "stack", style: "gap: 8px", "aria-labelledby": "card-title" },
    h("div", { class: "section-title" }, title),
    holder,
  );
  return { panel, show: (version) => show(version).then(() => holder.scrollIntoView()) };
}

export async function versionsSection(model) {
  let listing;
  try {
    listing = await api(`models/${encodeURIComponent(model.name)}/versions`);
  } catch (error) {
    return [section("versions-title", "Versions", alertBox(error))];
  }
  if (!listing.versions.length) {
    const train = dagOf(model, "train");
    return [
      section(
        "versions-title",
        "Versions",
        h(
          "p",
          { class: "muted" },
          "No version published yet: a successful run of ",
          train ? dagLink(train) : "the train DAG",
          " publishes the first.",
        ),
      ),
    ];
  }
  const card = cardPanel(model, listing);
  const sections = [
    section(
      "versions-title",
      `Versions (${listing.versions.length})`,
      versionsTable(model, listing, card.show),
    ),
    section("chart-title", "Metric across versions", chartPanel(model, listing)),
  ];
  if (listing.versions.length > 1)
    sections.push(section("compare-title", "Compare versions", comparePanel(model, listing)));
  if (dagOf(model, "evaluate") || evaluationsOf(listing).length)
    sections.push(
      section("evaluations-title", "Evaluations on fresh data", evaluationsPanel(model, listing)),
    );
  sections.push(card.panel);
  return sections;
}
