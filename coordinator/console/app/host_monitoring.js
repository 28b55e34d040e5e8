// A host's Monitoring tab: the 14 series of GET /v1/hosts/{id}/metrics as charts, for a range
// picked here (in the URL). A chart refresh: re-read every 30 s, and only while the page is
// visible (a hidden page reads again when it is shown, if its charts are older than that).
import { useEffect, useRef, useState } from "preact/hooks";
import { html } from "./html.js";
import { call } from "./api.js";
import { t } from "./i18n.js";
import { shortTime } from "./format.js";
import { SeriesChart, tick } from "./host_chart.js";

/** @typedef {import("../types/api").components["schemas"]["HostMetrics"]} HostMetrics */

export const RANGES = ["1h", "6h", "24h", "7d"];
const REFRESH_MS = 30_000;

/** The seed's order: network, disk, load, memory, filesystem, ops, packets, CPU, TCP, blocked. */
const ORDER = [
  "net_rx_bytes", "net_tx_bytes", "disk_read_bytes", "disk_written_bytes", "load1",
  "memory_used_percent", "filesystem_used_percent", "disk_reads", "disk_writes",
  "net_rx_packets", "net_tx_packets", "cpu_used_percent", "tcp_established", "procs_blocked",
];
const COLORS = ["#2f6fdf", "#1f9d55", "#c2410c", "#7c3aed", "#0e7490", "#b91c1c", "#a16207"];

/** @param {string} unit the catalogue key of a unit the API names */
function unitKey(unit) {
  return /** @type {any} */ (`hd.unit.${unit.replace(/\W+/g, "_")}`);
}

/** @param {{id: string, range: string, onRange: (r: string) => void}} props */
export function HostMonitoring({ id, range, onRange }) {
  const [metrics, setMetrics] = useState(/** @type {HostMetrics | null} */ (null));
  const [error, setError] = useState(/** @type {string | null} */ (null));
  const [loading, setLoading] = useState(true);
  const [readAt, setReadAt] = useState(0);
  const last = useRef(0);

  useEffect(() => {
    let alive = true;
    async function load() {
      last.current = Date.now();
      setLoading(true);
      try {
        const m = await call("GET", `/v1/hosts/${encodeURIComponent(id)}/metrics?since=${encodeURIComponent(range)}`);
        if (!alive) return;
        setMetrics(m);
        setError(null);
        setReadAt(Date.now());
      } catch (err) {
        if (alive) setError(err instanceof Error ? err.message : String(err));
      }
      if (alive) setLoading(false);
    }
    load();
    const timer = setInterval(() => {
      if (document.visibilityState === "visible") load();
    }, REFRESH_MS);
    const shown = () => {
      if (document.visibilityState === "visible" && Date.now() - last.current >= REFRESH_MS) load();
    };
    document.addEventListener("visibilitychange", shown);
    return () => {
      alive = false;
      clearInterval(timer);
      document.removeEventListener("visibilitychange", shown);
    };
  }, [id, range]);

  /** @type {Map<string, import("../types/api").components["schemas"]["MetricSeries"]>} */
  const byName = new Map((metrics ? metrics.series : []).map((s) => [String(s.name), s]));
  const names = [...ORDER.filter((n) => byName.has(n)), ...[...byName.keys()].filter((n) => !ORDER.includes(n))];

  return html`
    <div class="hd-monitoring" data-range=${range} data-loading=${loading ? "1" : "0"} data-read-at=${readAt}>
      <div class="toolbar">
        <div class="hd-ranges" role="group" aria-label=${t("hd.range")}>
          ${RANGES.map((r) => html`
            <button type="button" data-range=${r} aria-pressed=${r === range ? "true" : "false"}
              onClick=${() => onRange(r)}>${t(/** @type {any} */ (`hd.range.${r}`))}</button>`)}
        </div>
        ${metrics && html`<span class="hint">${t("hd.source", { source: t(/** @type {any} */ (`hd.source.${metrics.source}`)), step: metrics.step_s })}</span>`}
        ${readAt > 0 && html`<span class="hint">${t("hd.read_at", { time: shortTime(new Date(readAt).toISOString()) })}</span>`}
      </div>
      ${error && html`<p class="error" role="alert" data-raw>${error}</p>`}
      ${!metrics && !error && html`<p class="empty">${t("hd.loading")}</p>`}
      <div class="hd-charts">
        ${names.map((n, i) => {
          const s = /** @type {import("../types/api").components["schemas"]["MetricSeries"]} */ (byName.get(n));
          const label = t(/** @type {any} */ (`hd.metric.${n}`));
          const now = s.points.length ? s.points[s.points.length - 1].v : null;
          return html`
            <figure class="card hd-chart" key=${n} data-series=${n} data-points=${s.points.length}>
              <figcaption>
                <span class="hd-chart-title">${label}</span>
                <span class="hd-chart-unit">${t(unitKey(s.unit))}</span>
                <span class="hd-chart-now" data-raw>${now === null ? "" : tick(now, s.unit)}</span>
              </figcaption>
              ${s.points.length === 0
                ? html`<p class="empty">${t("hd.no_points")}</p>`
                : html`<div role="img" aria-label=${t("hd.chart_label", { name: label, n: s.points.length })}>
                    <${SeriesChart} name=${n} unit=${s.unit} points=${s.points} color=${COLORS[i % COLORS.length]} label=${label} />
                  </div>`}
            </figure>`;
        })}
      </div>
    </div>`;
}
