// One time series as a uPlot line chart (canvas), sized to its box and redrawn in place when
// the points change; the axis labels are numbers and times, the title is the caller's.
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import { html } from "./html.js";

/** @typedef {import("../types/api").components["schemas"]["MetricPoint"]} MetricPoint */

const HEIGHT = 150;

/** @param {number} v @param {string} unit a short number for an axis tick */
export function tick(v, unit) {
  if (unit === "percent") return `${Math.round(v)}%`;
  const a = Math.abs(v);
  if (unit.startsWith("bytes")) {
    const steps = ["B", "K", "M", "G", "T"];
    let i = 0;
    let x = a;
    while (x >= 1024 && i < steps.length - 1) {
      x /= 1024;
      i++;
    }
    return `${(v < 0 ? -x : x).toFixed(x >= 10 || i === 0 ? 0 : 1)}${steps[i]}`;
  }
  if (a >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (a >= 1e3) return `${(v / 1e3).toFixed(1)}k`;
  return a >= 10 || Number.isInteger(v) ? v.toFixed(0) : v.toFixed(2);
}

/**
 * @param {{name: string, unit: string, points: MetricPoint[], color: string, label: string}} props
 */
export function SeriesChart({ name, unit, points, color, label }) {
  const box = useRef(/** @type {HTMLDivElement | null} */ (null));
  const plot = useRef(/** @type {uPlot | null} */ (null));

  /** @returns {uPlot.AlignedData} */
  const data = () => [points.map((p) => p.t / 1000), points.map((p) => p.v)];

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    /** @type {uPlot.Options} */
    const opts = {
      width: Math.max(200, el.clientWidth),
      height: HEIGHT,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { y: { range: (_u, min, max) => (unit === "percent" ? [0, 100] : [Math.min(0, min), max > 0 ? max * 1.1 : 1]) } },
      axes: [
        { stroke: "#5b6676", grid: { stroke: "#eef0f3" }, ticks: { stroke: "#dfe3e8" } },
        { stroke: "#5b6676", grid: { stroke: "#eef0f3" }, ticks: { stroke: "#dfe3e8" }, size: 52,
          values: (_u, splits) => splits.map((v) => tick(v, unit)) },
      ],
      series: [{}, { label, stroke: color, width: 1.5, fill: `${color}22`, points: { show: false } }],
    };
    const u = new uPlot(opts, data(), el);
    plot.current = u;
    const ro = new ResizeObserver(() => {
      const w = Math.max(200, el.clientWidth);
      if (Math.abs(w - u.width) > 1) u.setSize({ width: w, height: HEIGHT });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [name, unit]);

  useEffect(() => {
    if (plot.current) plot.current.setData(data());
  }, [points]);

  return html`<div class="hd-chart-box" ref=${box} data-points=${points.length}></div>`;
}
