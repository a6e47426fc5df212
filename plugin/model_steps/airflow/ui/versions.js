// A model's published versions: a table with metrics per version and rollback, and a chart of the
// chosen metric across versions.

import { formatTime } from "./airflow.js";
import { api } from "./api.js";
import { change, confirmAction } from "./changes.js";
import { chart } from "./chart.js";
import { h } from "./dom.js";
import {
  alertBox,
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

async function rollback(model, version, current) {
  const message = `Handlers serving ${model.name} switch from version ${current} to version ${version} on their next poll. Nothing is deleted; a new training publishes a newer version as usual.`;
  if (
    !(await confirmAction(`Roll back ${model.name} to version ${version}?`, message, "Roll back"))
  )
    return;
  await change(
    model.name,
    { path: "rollback", body: { version } },
    (result) =>
      `${result.model} now serves version ${result.version} (was ${result.previous ?? "none"}).`,
  );
}

function versionsTable(model, listing) {
  const names = metricNames(listing.versions.map((v) => v.metrics));
  const row = (version) =>
    h(
      "tr",
      {
        class: version.is_current ? "current" : null,
        "aria-current": version.is_current ? "true" : null,
      },
      h(
        "td",
        {},
        h("strong", {}, `v${version.version}`),
        " ",
        version.is_current ? badge("live", "green") : null,
      ),
      h("td", {}, formatTime(version.published_at)),
      h("td", {}, version.definition_version ?? "—"),
      h("td", { class: "mono", title: version.run_id }, version.run_id),
      h("td", { class: "mono", title: version.spec_hash }, version.spec_hash.slice(0, 12)),
      names.map((name) =>
        h("td", { class: "number" }, formatMetric(metricValue(version.metrics, name))),
      ),
      h(
        "td",
        {},
        version.is_current
          ? null
          : h(
              "button",
              {
                class: "button small",
                type: "button",
                onClick: () => rollback(model, version.version, listing.current),
              },
              `Roll back to v${version.version}`,
            ),
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
          ["Version", "Published", "Definition", "Run", "Spec hash"].map((t) =>
            h("th", { scope: "col" }, t),
          ),
          names.map((n) => h("th", { scope: "col", class: "number" }, n)),
          h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Rollback")),
        ),
      ),
      h("tbody", {}, listing.versions.map(row)),
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
  const select = h(
    "select",
    {
      id: "metric",
      onChange: (event) => {
        chosenMetric.set(model.name, event.target.value);
        holder.replaceChildren(chart(listing.versions, event.target.value, listing.current));
      },
    },
    names.map((name) => h("option", { value: name, selected: name === chosen }, name)),
  );
  return h(
    "div",
    { class: "stack", style: "gap: 8px" },
    h("div", { class: "row" }, h("label", { for: "metric", class: "label" }, "Metric"), select),
    holder,
  );
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
  return [
    section(
      "versions-title",
      `Versions (${listing.versions.length})`,
      versionsTable(model, listing),
    ),
    section("chart-title", "Metric across versions", chartPanel(model, listing)),
  ];
}
