// The model card: a minimal, safe markdown (headings, lists, tables, code blocks, **bold**,
// *emphasis*, `code`, link text), built as DOM nodes so nothing in a card can run in the page.
// Links show as their text: a card's in-page links would fight this page's own #/ routes.

import { h } from "./dom.js";

function inline(text) {
  return text
    .replace(/\[([^\]]+)\]\([^)]*\)/g, "$1")
    .split(/(\*\*[^*]+\*\*|`[^`]+`|\*[^*\s][^*]*\*|\b_[^_]+_\b)/)
    .filter(Boolean)
    .map((part) => {
      if (part.startsWith("**") && part.endsWith("**")) return h("strong", {}, part.slice(2, -2));
      if (part.startsWith("`") && part.endsWith("`")) return h("code", {}, part.slice(1, -1));
      if (/^(\*[^*].*\*|_.+_)$/.test(part)) return h("em", {}, part.slice(1, -1));
      return part;
    });
}

function tableBlock(lines) {
  const cells = (line) =>
    line
      .replace(/^\||\|$/g, "")
      .split("|")
      .map((cell) => cell.trim());
  const [head, , ...body] = lines;
  return h(
    "table",
    {},
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        cells(head).map((c) => h("th", { scope: "col" }, inline(c))),
      ),
    ),
    h(
      "tbody",
      {},
      body.map((line) =>
        h(
          "tr",
          {},
          cells(line).map((c) => h("td", {}, inline(c))),
        ),
      ),
    ),
  );
}

export function markdown(text) {
  const blocks = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length;) {
    const line = lines[i];
    const heading = /^(#{1,3})\s+(.*)$/.exec(line);
    if (heading) {
      blocks.push(h(`h${heading[1].length + 2}`, {}, inline(heading[2])));
      i += 1;
    } else if (line.startsWith("```")) {
      const start = i + 1;
      i = start;
      while (i < lines.length && !lines[i].startsWith("```")) i += 1;
      blocks.push(h("pre", {}, h("code", {}, lines.slice(start, i).join("\n"))));
      i += 1;
    } else if (/^\d+\. /.test(line)) {
      const items = [];
      while (i < lines.length && /^\d+\. /.test(lines[i]))
        items.push(h("li", {}, inline(lines[i++].replace(/^\d+\. /, ""))));
      blocks.push(h("ol", {}, items));
    } else if (line.startsWith("|")) {
      const start = i;
      while (i < lines.length && lines[i].startsWith("|")) i += 1;
      blocks.push(tableBlock(lines.slice(start, i)));
    } else if (line.startsWith("- ")) {
      const items = [];
      while (i < lines.length && lines[i].startsWith("- "))
        items.push(h("li", {}, inline(lines[i++].slice(2))));
      blocks.push(h("ul", {}, items));
    } else if (line.trim()) {
      const start = i;
      while (i < lines.length && lines[i].trim() && !/^(#|\||- |```|\d+\. )/.test(lines[i])) i += 1;
      blocks.push(h("p", {}, inline(lines.slice(start, i).join(" "))));
    } else {
      i += 1;
    }
  }
  return blocks;
}
