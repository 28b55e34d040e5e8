// One bare-metal server: basic information (id, name, IPMI IP, SN, power), its power actions
// and console, its hardware monitoring (health, sensors, event log), then the hardware the BMC
// describes (CPUs, memory modules, PCIe devices) and the recent power changes. Re-read when the change feed names the server.
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { call } from "./api.js";
import { t } from "./i18n.js";
import { dateTime } from "./format.js";
import { PowerConfirm, PowerMenu, PowerStatus } from "./baremetal_power.js";
import { SerialConsole } from "./baremetal_console.js";
import { UpdateServer } from "./baremetal_forms.js";
import { Badge } from "./baremetal_row.js";
import { HardwareHealth } from "./baremetal_health.js";

/** @typedef {import("../types/api").components["schemas"]["BaremetalDetail"]} Detail */
/** @typedef {import("./baremetal_power.js").PowerRun} PowerRun */
/** @typedef {import("./baremetal_power.js").PowerAction} PowerAction */

/** @param {unknown} v */
const cell = (v) => (v === null || v === undefined || v === "" ? "—" : String(v));

/**
 * A table of `rows` with `cols` (label, value of a row), or "None." when there are none.
 * @template T
 * @param {{title: string, rows: T[] | null | undefined, cols: [string, (r: T) => unknown][], testid: string}} props
 */
function Parts({ title, rows, cols, testid }) {
  return html`
    <section class="bm-part" data-testid=${testid}>
      <h2>${title}</h2>
      ${rows && rows.length
        ? html`<div class="bm-scroll"><table class="bm-table">
            <thead><tr>${cols.map(([label]) => html`<th scope="col">${label}</th>`)}</tr></thead>
            <tbody>${rows.map((r) => html`<tr>${cols.map(([, f]) => html`<td data-raw>${cell(f(r))}</td>`)}</tr>`)}</tbody>
          </table></div>`
        : html`<p class="empty">${t("bm.detail.none")}</p>`}
    </section>`;
}

/**
 * @param {import("./shell.js").ScreenProps & {id: string}} props
 */
export function BaremetalDetail({ feed, id }) {
  const [server, setServer] = useState(/** @type {Detail | null} */ (null));
  const [missing, setMissing] = useState(false);
  const [dialog, setDialog] = useState(/** @type {null | "console" | "update" | PowerAction} */ (null));
  const [run, setRun] = useState(/** @type {PowerRun | null} */ (null));

  useEffect(() => {
    let gone = false;
    async function read() {
      try {
        const s = await call("GET", `/v1/baremetal/${encodeURIComponent(id)}`);
        if (!gone) setServer(s);
      } catch (err) {
        if (!gone && /** @type {any} */ (err).status === 404) setMissing(true);
      }
    }
    read();
    const off = feed.onEvent((e) => {
      if (e.type === "baremetal" && e.resource_id === id) read();
    });
    const offReload = feed.onReload(read);
    return () => {
      gone = true;
      off();
      offReload();
    };
  }, [id, feed]);

  const back = html`<a href="#/baremetal" class="back">${t("bm.detail.back")}</a>`;
  if (missing) return html`<section class="bm-detail">${back}<p class="error" role="alert">${t("bm.detail.not_found")}</p></section>`;
  if (!server) return html`<section class="bm-detail">${back}<p class="empty">${t("bm.detail.loading")}</p></section>`;
  const s = server;
  const inv = s.inventory;
  const running = s.state === "running";
  return html`
    <section class="bm-detail" aria-labelledby="bm-detail-title" data-baremetal-detail=${s.id}>
      ${back}
      <div class="screen-head">
        <h1 id="bm-detail-title" data-raw>${s.name}</h1>
        <${Badge} kind="state" value=${s.state} />
        <div class="bm-actions">
          <${PowerMenu} server=${s} onPick=${(/** @type {PowerAction} */ a) => setDialog(a)} />
          <button type="button" disabled=${!running} data-action="console" onClick=${() => setDialog("console")}>${t("bm.action.console")}</button>
          <button type="button" disabled=${!running} data-action="update" onClick=${() => setDialog("update")}>${t("bm.action.update")}</button>
        </div>
      </div>
      ${run && html`<${PowerStatus} run=${run} feed=${feed} onClose=${() => setRun(null)} />`}
      <section class="bm-part">
        <h2>${t("bm.detail.basic")}</h2>
        <dl class="facts" data-testid="bm-basic">
          <dt>${t("bm.col.id")}</dt><dd class="mono" data-raw>${s.id}</dd>
          <dt>${t("bm.col.name")}</dt><dd data-raw>${s.name}</dd>
          <dt>${t("bm.col.ipmi_ip")}</dt><dd class="mono" data-raw>${s.ipmi_ip}</dd>
          <dt>${t("bm.col.sn")}</dt><dd data-raw>${cell(s.sn)}</dd>
          <dt>${t("bm.col.power")}</dt><dd data-field="power"><${Badge} kind="power_state" value=${s.power_state} /></dd>
          <dt>${t("bm.col.console")}</dt><dd><${Badge} kind="console_state" value=${s.console_state} /></dd>
          <dt>${t("bm.col.model")}</dt><dd data-raw>${cell(s.model)}</dd>
          <dt>${t("bm.detail.manufacturer")}</dt><dd data-raw>${cell(s.manufacturer)}</dd>
          <dt>${t("bm.col.tenant")}</dt><dd data-raw>${s.tenant_email}</dd>
          <dt>${t("bm.col.rack")}</dt><dd data-raw data-field="rack">${s.rack_location}</dd>
          <dt>${t("bm.detail.label")}</dt><dd data-raw data-field="label">${cell(s.label)}</dd>
          <dt>${t("bm.col.created")}</dt><dd data-raw>${dateTime(s.created_at)}</dd>
          ${s.reason && html`<dt>${t("bm.detail.reason")}</dt><dd data-raw>${s.reason}</dd>`}
        </dl>
      </section>
      <${HardwareHealth} id=${s.id} health=${s.health} />
      ${inv.source === "unknown" && html`<p class="hint">${t("bm.detail.inventory_unknown")} <span data-raw>${inv.note || ""}</span></p>`}
      <${Parts} title=${t("bm.detail.cpu")} testid="bm-cpus" rows=${inv.cpus}
        cols=${[[t("bm.cpu.model"), (/** @type {any} */ c) => c.model], [t("bm.cpu.cores"), (/** @type {any} */ c) => c.cores],
          [t("bm.cpu.rated_power"), (/** @type {any} */ c) => c.rated_power_watts], [t("bm.cpu.l1"), (/** @type {any} */ c) => c.l1_cache_kb],
          [t("bm.cpu.l2"), (/** @type {any} */ c) => c.l2_cache_kb], [t("bm.cpu.l3"), (/** @type {any} */ c) => c.l3_cache_kb]]} />
      <${Parts} title=${t("bm.detail.memory")} testid="bm-memory" rows=${inv.memory}
        cols=${[[t("bm.mem.vendor"), (/** @type {any} */ m) => m.vendor], [t("bm.mem.serial"), (/** @type {any} */ m) => m.serial],
          [t("bm.mem.capacity"), (/** @type {any} */ m) => m.capacity_gb], [t("bm.mem.speed"), (/** @type {any} */ m) => m.speed_mhz]]} />
      <${Parts} title=${t("bm.detail.pcie")} testid="bm-pcie" rows=${inv.pcie_devices}
        cols=${[[t("bm.pcie.name"), (/** @type {any} */ p) => p.name], [t("bm.pcie.model"), (/** @type {any} */ p) => p.model],
          [t("bm.pcie.manufacturer"), (/** @type {any} */ p) => p.manufacturer]]} />
      <section class="bm-part" data-testid="bm-history">
        <h2>${t("bm.detail.power_history")}</h2>
        ${s.power_history.length
          ? html`<div class="bm-scroll"><table class="bm-table">
              <thead><tr><th scope="col">${t("bm.history.at")}</th><th scope="col">${t("bm.history.power")}</th><th scope="col">${t("bm.history.source")}</th></tr></thead>
              <tbody>${s.power_history.map((h) => html`<tr data-power=${h.power_state}>
                <td data-raw>${dateTime(h.at)}</td>
                <td><${Badge} kind="power_state" value=${h.power_state} /></td>
                <td>${["sync", "action", "prepare"].includes(h.source) ? t(/** @type {any} */ (`bm.source.${h.source}`)) : html`<span data-raw>${h.source}</span>`}</td>
              </tr>`)}</tbody>
            </table></div>`
          : html`<p class="empty">${t("bm.detail.none")}</p>`}
      </section>
      ${dialog === "console" && html`<${SerialConsole} server=${s} onClose=${() => setDialog(null)} />`}
      ${dialog === "update" && html`<${UpdateServer} server=${s} onClose=${() => setDialog(null)}
        onSaved=${(/** @type {any} */ b) => {
          setServer({ ...s, ...b });
          setDialog(null);
        }} />`}
      ${dialog && dialog !== "console" && dialog !== "update" && html`<${PowerConfirm} server=${s} action=${dialog}
        onDone=${(/** @type {PowerRun | null} */ r) => {
          setDialog(null);
          if (r) setRun(r);
        }} />`}
    </section>`;
}
