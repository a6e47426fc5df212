// Two versions side by side: what each was trained with (parameters, definition, data) and what
// it scored, with every row that differs marked, as MLflow's run comparison shows them.

import { api } from "./api.js";
import { h } from "./dom.js";
import { alertBox, formatMetric, metricNames, metricValue } from "./parts.js";

/** The chosen pair per model, kept across re-renders (the page refreshes itself). */
const chosenPair = new Map();

/** Rows of facts of one manifest, by label: what a reader compares. */
function facts(manifest) {
  const rows = new Map();
  rows.set("definition version", manifest.definition_version ?? "—");
  rows.set("definition hash", manifest.spec_hash.slice(0, 12));
  rows.set("training run", manifest.run_id);
  for (const [name, value] of Object.entries(manifest.parameters))
    rows.set(`parameter ${name}`, JSON.stringify(value));
  for (const step of manifest.steps) {
    rows.set(`${step.step_id}: rows in`, step.rows_in.toLocaleString());
    rows.set(`${step.step_id}: columns`, step.columns_in.join(", "));
  }
  for (const name of metricNames([manifest.metrics]))
    rows.set(name, formatMetric(metricValue(manifest.metrics, name)));
  return rows;
}

function comparison(left, right) {
  const a = facts(left);
  const b = facts(right);
  const labels = [...new Set([...a.keys(), ...b.keys()])];
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { "aria-label": `v${left.version} compared with v${right.version}` },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, ""),
          h("th", { scope: "col" }, `v${left.version}`),
          h("th", { scope: "col" }, `v${right.version}`),
          h("th", { scope: "col" }, ""),
        ),
      ),
      h(
        "tbody",
        {},
        labels.map((label) => {
          const changed = a.get(label) !== b.get(label);
          return h(
            "tr",
            { "data-changed": String(changed) },
            h("th", { scope: "row" }, label),
            h("td", { class: "wrap" }, a.get(label) ?? "—"),
            h("td", { class: "wrap" }, b.get(label) ?? "—"),
            h("td", {}, changed ? h("span", { class: "badge amber" }, "changed") : ""),
          );
        }),
      ),
    ),
  );
}

function chooser(id, label, versions, chosen, onChange) {
  return h(
    "span",
    { class: "row" },
    h("label", { class: "label", for: id }, label),
    h(
      "select",
      { id, onChange: (event) => onChange(Number(event.target.value)) },
      versions.map((v) => h("option", { value: v, selected: v === chosen }, `v${v}`)),
    ),
  );
}

/** The compare panel: two version choosers and the table of what differs between them. */
export function comparePanel(model, listing) {
  const versions = listing.versions.map((v) => v.version);
  const live = listing.current ?? versions[0];
  const [first, second] = chosenPair.get(model.name) ?? [
    versions.find((v) => v !== live) ?? live,
    live,
  ];
  const pair = [first, second];
  const holder = h("div", {});
  const show = async () => {
    chosenPair.set(model.name, [...pair]);
    const path = (v) => `models/${encodeURIComponent(model.name)}/versions/${v}`;
    try {
      const [left, right] = await Promise.all(pair.map((v) => api(path(v))));
      holder.replaceChildren(comparison(left, right));
    } catch (error) {
      holder.replaceChildren(alertBox(error));
    }
  };
  show();
  return h(
    "div",
    { class: "stack", style: "gap: 8px" },
    h(
      "div",
      { class: "row" },
      chooser("compare-left", "Compare", versions, first, (v) => {
        pair[0] = v;
        show();
      }),
      chooser("compare-right", "with", versions, second, (v) => {
        pair[1] = v;
        show();
      }),
    ),
    holder,
  );
}
