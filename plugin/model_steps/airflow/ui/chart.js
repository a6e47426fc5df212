// Inline SVG line charts (no chart library to load): a metric across a model's versions, and a
// metric over a model's evaluations on fresh data.

import { formatTime } from "./airflow.js";
import { svg } from "./dom.js";
import { formatMetric, metricValue } from "./parts.js";

/** A line chart of one metric across versions, oldest first, the live version filled in. */
export function chart(versions, metric, current) {
  const points = versions
    .map((v) => ({ version: v.version, value: metricValue(v.metrics, metric) }))
    .filter((p) => typeof p.value === "number")
    .sort((a, b) => a.version - b.version)
    .map((p) => ({
      value: p.value,
      tick: `v${p.version}`,
      title: `v${p.version}: ${formatMetric(p.value)}`,
      className: p.version === current ? "point current" : "point",
    }));
  return lineChart(points, `${metric} across versions`);
}

/** One metric over time across evaluations (oldest first); degraded ones marked. */
export function timeline(evaluations, metric) {
  const points = evaluations
    .filter((e) => typeof e.metrics[metric] === "number")
    .map((e) => ({
      value: e.metrics[metric],
      tick: `v${e.version}`,
      title: `${formatTime(e.evaluated_at)}, v${e.version}: ${formatMetric(e.metrics[metric])}${e.degraded ? " (degraded)" : ""}`,
      className: e.degraded ? "point degraded" : "point",
    }));
  if (!points.length) return svg("svg", { class: "chart", viewBox: "0 0 640 40", role: "img", "aria-label": "no evaluations yet" });
  return lineChart(points, `${metric} over evaluations`);
}

function lineChart(points, title) {
  const [width, height, left, right, top, bottom] = [640, 220, 56, 16, 12, 28];
  const values = points.map((p) => p.value);
  let [low, high] = [Math.min(...values), Math.max(...values)];
  if (low === high)
    [low, high] = [low - (Math.abs(low) * 0.05 || 0.5), high + (Math.abs(high) * 0.05 || 0.5)];
  const pad = (high - low) * 0.1;
  [low, high] = [low - pad, high + pad];
  const x = (i) =>
    left +
    (points.length === 1
      ? (width - left - right) / 2
      : (i * (width - left - right)) / (points.length - 1));
  const y = (value) => top + ((high - value) * (height - top - bottom)) / (high - low);
  const grid = [0, 1, 2, 3].map((i) => {
    const value = low + ((high - low) * i) / 3;
    return svg(
      "g",
      {},
      svg("line", { class: "grid", x1: left, x2: width - right, y1: y(value), y2: y(value) }),
      svg("text", { x: left - 6, y: y(value) + 4, "text-anchor": "end" }, value.toFixed(3)),
    );
  });
  const dots = points.map((p, i) => {
    const dot = svg("circle", { class: p.className, cx: x(i), cy: y(p.value), r: 4 });
    dot.append(svg("title", {}, p.title));
    return svg(
      "g",
      {},
      dot,
      svg("text", { x: x(i), y: height - 8, "text-anchor": "middle" }, p.tick),
    );
  });
  const label = `${title}: ${points.map((p) => p.title).join(", ")}`;
  return svg(
    "svg",
    { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label },
    ...grid,
    svg("line", {
      class: "axis",
      x1: left,
      x2: width - right,
      y1: height - bottom,
      y2: height - bottom,
    }),
    svg("polyline", {
      class: "line",
      points: points.map((p, i) => `${x(i)},${y(p.value)}`).join(" "),
    }),
    ...dots,
  );
}
