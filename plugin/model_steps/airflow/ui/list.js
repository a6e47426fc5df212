// The list (#/): every model of the DAGs folder, and every definition file that failed to load.

import { api } from "./api.js";
import { h } from "./dom.js";
import {
  badge,
  dagFields,
  dagLink,
  definitionAlert,
  field,
  liveVersion,
  metricsTable,
  scheduleText,
  section,
  storeAlert,
  tagList,
} from "./parts.js";

function modelCard(model) {
  const title = `model-${model.name}`;
  return h(
    "li",
    { class: "card", "aria-labelledby": title },
    h(
      "div",
      { class: "card-header" },
      h(
        "a",
        { id: title, class: "name", href: `#/models/${encodeURIComponent(model.name)}` },
        model.name,
      ),
      tagList(model.tags),
      h("span", { class: "spacer" }),
      badge(model.status),
      h("span", { title: "schedule status" }, badge(model.schedule_status)),
    ),
    h(
      "div",
      { class: "card-body" },
      model.description ? h("p", {}, model.description) : null,
      definitionAlert(model),
      storeAlert(model),
      h(
        "dl",
        { class: "fields" },
        field("Domain", model.domain ?? "—"),
        field(
          "Definition",
          model.definition_version ?? "—",
          h("br"),
          h("span", { class: "muted mono" }, model.file),
        ),
        field("Schedule", ...scheduleText(model)),
        field("Live version", liveVersion(model)),
        ...dagFields(model),
        field("Metrics (live version)", metricsTable(model.metrics)),
      ),
    ),
  );
}

function problemItem(problem) {
  const where =
    problem.line === null
      ? ""
      : `line ${problem.line}${problem.column === null ? "" : `:${problem.column}`}`;
  const parts = [
    where ? h("span", { class: "where mono" }, where) : null,
    problem.field ? h("code", { class: "field" }, problem.field) : null,
    h("span", {}, problem.message),
  ];
  // Spaces between the parts, so a copied line reads "line 6:3 schedule.train unknown preset ..."
  return h(
    "li",
    { title: problem.text },
    parts.filter(Boolean).flatMap((part, i) => (i ? [" ", part] : [part])),
  );
}

function invalidCard(file) {
  return h(
    "li",
    { class: "card invalid", "aria-label": file.file },
    h(
      "div",
      { class: "card-header" },
      h("span", { class: "name mono" }, file.file),
      h("span", { class: "spacer" }),
      h(
        "span",
        { class: "muted" },
        "placeholder DAG ",
        dagLink({ dag_id: file.dag_id, url: `/dags/${file.dag_id}` }),
      ),
    ),
    h(
      "div",
      { class: "card-body" },
      h("ul", { class: "problems" }, file.problems.map(problemItem)),
    ),
  );
}

const byName = (a, b) => a.name.localeCompare(b.name);

export async function listPage() {
  const listing = await api("models");
  const models = listing.models.length
    ? h(
        "ul",
        { class: "cards", "aria-label": "models" },
        listing.models.toSorted(byName).map(modelCard),
      )
    : h(
        "p",
        { class: "muted" },
        "No model definitions in the DAGs folder yet: add a model YAML file to dags/.",
      );
  const invalid = listing.invalid.length
    ? section(
        "invalid-title",
        `Definition files with errors (${listing.invalid.length})`,
        h(
          "ul",
          { class: "cards", "aria-label": "definition files with errors" },
          listing.invalid.toSorted((a, b) => a.file.localeCompare(b.file)).map(invalidCard),
        ),
      )
    : null;
  const slow = (listing.parse_warnings ?? []).length
    ? section(
        "parse-title",
        "DAG files near Airflow's parse timeout",
        h(
          "ul",
          { class: "problems", "aria-label": "parse warnings" },
          listing.parse_warnings.map((text) => h("li", {}, text)),
        ),
      )
    : null;
  document.title = "Models · Airflow";
  return h(
    "div",
    { class: "stack" },
    h(
      "header",
      { class: "page-header" },
      h("h1", {}, "Models"),
      h("span", { class: "muted" }, `${listing.models.length} models`),
    ),
    slow,
    models,
    invalid,
  );
}
