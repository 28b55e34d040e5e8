// A bare-metal server's hardware monitoring: the health its sensors sum up to (naming the
// worst sensor), each sensor's reading against its thresholds, and the BMC's event log as
// plinth kept it, newest first. Read again whenever the server's health was read anew.
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { call } from "./api.js";
import { t } from "./i18n.js";
import { dateTime } from "./format.js";
import { Badge } from "./baremetal_row.js";

/** @typedef {import("../types/api").components["schemas"]["HealthSummary"]} HealthSummary */
/** @typedef {import("../types/api").components["schemas"]["SensorList"]} SensorList */
/** @typedef {import("../types/api").components["schemas"]["Sensor"]} Sensor */
/** @typedef {import("../types/api").components["schemas"]["HardwareEvent"]} HardwareEvent */

/** Thresholds low to high, as the CLI prints them: `lc 5 unc 80 uc 90`. */
const LIMITS = /** @type {const} */ ([
  ["lnr", "lower_non_recoverable"], ["lc", "lower_critical"], ["lnc", "lower_non_critical"],
  ["unc", "upper_non_critical"], ["uc", "upper_critical"], ["unr", "upper_non_recoverable"],
]);

/** @param {Sensor} s */
function limits(s) {
  const given = LIMITS.filter(([, k]) => s.thresholds[k] != null).map(([short, k]) => `${short} ${s.thresholds[k]}`);
  return given.length ? given.join(" ") : "—";
}

/** @param {Sensor} s */
const reading = (s) => (s.value == null ? "—" : `${s.value}${s.unit ? ` ${s.unit}` : ""}`);

/**
 * @param {{id: string, health: HealthSummary}} props
 */
export function HardwareHealth({ id, health }) {
  const [sensors, setSensors] = useState(/** @type {SensorList | null} */ (null));
  const [events, setEvents] = useState(/** @type {HardwareEvent[]} */ ([]));

  useEffect(() => {
    let gone = false;
    const base = `/v1/baremetal/${encodeURIComponent(id)}`;
    Promise.all([call("GET", `${base}/sensors`), call("GET", `${base}/events`)])
      .then(([s, e]) => {
        if (gone) return;
        setSensors(s);
        setEvents(e.items);
      })
      .catch(() => {});
    return () => {
      gone = true;
    };
  }, [id, health.read_at]);

  return html`
    <section class="bm-part" data-testid="bm-hardware">
      <h2>${t("bm.hw.title")}</h2>
      <dl class="facts" data-testid="bm-health">
        <dt>${t("bm.hw.health")}</dt><dd data-field="health"><${Badge} kind="health" value=${health.health} /></dd>
        <dt>${t("bm.hw.worst")}</dt><dd data-raw data-field="worst">${health.worst_sensor || "—"}</dd>
        <dt>${t("bm.hw.read_at")}</dt><dd data-raw>${health.read_at ? dateTime(health.read_at) : "—"}</dd>
      </dl>
      ${sensors?.error && html`<p class="error" role="status">${t("bm.hw.error")} <span data-raw>${sensors.error}</span></p>`}
      <h3>${t("bm.hw.sensors")}</h3>
      ${sensors && sensors.items.length
        ? html`<div class="bm-scroll"><table class="bm-table" data-testid="bm-sensors">
            <thead><tr>
              <th scope="col">${t("bm.sensor.name")}</th><th scope="col">${t("bm.sensor.kind")}</th>
              <th scope="col">${t("bm.sensor.value")}</th><th scope="col">${t("bm.sensor.status")}</th>
              <th scope="col">${t("bm.sensor.thresholds")}</th>
            </tr></thead>
            <tbody>${sensors.items.map((s) => html`<tr data-sensor=${s.name} data-status=${s.status}>
              <td data-raw>${s.name}</td><td data-raw>${s.kind}</td><td data-raw>${reading(s)}</td>
              <td><${Badge} kind="sensor_status" value=${s.status} /></td><td class="mono" data-raw>${limits(s)}</td>
            </tr>`)}</tbody>
          </table></div>`
        : html`<p class="empty">${t("bm.hw.no_sensors")}</p>`}
      <h3>${t("bm.hw.events")}</h3>
      ${events.length
        ? html`<div class="bm-scroll"><table class="bm-table" data-testid="bm-events">
            <thead><tr>
              <th scope="col">${t("bm.event.time")}</th><th scope="col">${t("bm.event.sensor")}</th>
              <th scope="col">${t("bm.event.type")}</th><th scope="col">${t("bm.event.direction")}</th>
              <th scope="col">${t("bm.event.description")}</th>
            </tr></thead>
            <tbody>${events.map((e) => html`<tr>
              <td data-raw>${e.time ? dateTime(e.time) : "—"}</td><td data-raw>${e.sensor}</td><td data-raw>${e.sensor_type}</td>
              <td>${e.direction === "assert" || e.direction === "deassert" ? t(/** @type {any} */ (`bm.direction.${e.direction}`)) : html`<span data-raw>${e.direction}</span>`}</td>
              <td data-raw>${e.description}</td>
            </tr>`)}</tbody>
          </table></div>`
        : html`<p class="empty">${t("bm.detail.none")}</p>`}
    </section>`;
}
