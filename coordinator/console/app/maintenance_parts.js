// Pieces of the maintenance screens: a drain's status, the plan's table (each instance's
// action, candidate targets, blockers, whether it fits) and the drain's board (per instance:
// target, status, attempts, timings, why it stayed).
import { html } from "./html.js";
import { t } from "./i18n.js";
import { gib, shortTime, dateTime } from "./format.js";

/**
 * @typedef {import("./maintenance_model.js").Drain} Drain
 * @typedef {import("./maintenance_model.js").MoveItem} MoveItem
 * @typedef {import("./maintenance_model.js").DrainPlan} DrainPlan
 * @typedef {import("./maintenance_model.js").PlanItem} PlanItem
 * @typedef {import("./hosts_model.js").Host} Host
 */

/** @param {string} id */
export const boardHref = (id) => `#/maintenance/${encodeURIComponent(id)}`;

/** How many candidate targets a plan row names before "+n more". */
const TARGETS_SHOWN = 4;

/** @param {{drain: Drain}} props */
export function DrainStatus({ drain }) {
  return html`<span class=${`badge drain-${drain.status}`} data-drain-status=${drain.status}>
    ${t(/** @type {any} */ (`maint.drain.${drain.status}`))}</span>`;
}

/** A host as a cell shows it: its id, and its address when the hosts list knows it. */
/** @param {{id: string | null | undefined, hosts: Map<string, Host>}} props */
function HostRef({ id, hosts }) {
  if (!id) return html`<span class="muted">—</span>`;
  const h = hosts.get(id);
  return html`<span class="maint-host" data-target=${id}>
    <span class="mono" data-raw>${id}</span>${h && html`<span class="sub" data-raw>${h.ip}</span>`}</span>`;
}

/** @param {{item: {instance_id: string, instance_name: string}}} props */
function InstanceRef({ item }) {
  return html`<span class="maint-inst"><span data-raw>${item.instance_name}</span>
    <span class="sub mono" data-raw>${item.instance_id}</span></span>`;
}

/**
 * The plan: what entering maintenance would do with each instance, and whether the cluster
 * has room for all of them.
 * @param {{plan: DrainPlan, hosts: Map<string, Host>}} props
 */
export function PlanTable({ plan, hosts }) {
  return html`
    <div data-testid="plan" data-fits=${plan.fits ? "1" : "0"}>
      <p class="maint-summary" data-testid="plan-summary">
        ${t("maint.plan.summary", { migrate: plan.to_migrate, release: plan.to_release, blocked: plan.blocked })}
      </p>
      ${plan.to_migrate > 0 && html`
        <p class=${plan.fits ? "maint-fits ok" : "maint-fits bad"} data-testid="plan-fits">
          ${plan.fits ? t("maint.plan.fits") : t("maint.plan.no_fit")}</p>`}
      ${plan.items.length === 0
        ? html`<p class="empty">${t("maint.plan.empty")}</p>`
        : html`
          <div class="maint-scroll" role="region" tabindex="0" aria-label=${t("maint.plan.title")}>
            <table class="maint-table">
              <thead><tr>
                <th scope="col">${t("maint.col.instance")}</th>
                <th scope="col">${t("maint.col.instance_state")}</th>
                <th scope="col">${t("maint.col.size")}</th>
                <th scope="col">${t("maint.col.action")}</th>
                <th scope="col">${t("maint.col.targets")}</th>
                <th scope="col">${t("maint.col.fits")}</th>
                <th scope="col">${t("maint.col.blocked")}</th>
              </tr></thead>
              <tbody>
                ${plan.items.map((i) => html`<${PlanRow} key=${i.instance_id} item=${i} hosts=${hosts} />`)}
              </tbody>
            </table>
          </div>`}
    </div>`;
}

/** @param {{item: PlanItem, hosts: Map<string, Host>}} props */
function PlanRow({ item, hosts }) {
  const targets = item.targets || [];
  const fits = item.action === "migrate" ? (targets.length > 0 ? "yes" : "no") : item.action === "release" ? "na" : "no";
  return html`
    <tr data-instance-id=${item.instance_id} data-action=${item.action}>
      <td><${InstanceRef} item=${item} /></td>
      <td>${t(/** @type {any} */ (`maint.istate.${item.state}`))}</td>
      <td>${item.memory_bytes < 2 ** 30
        ? t("maint.size_mib", { vcpus: item.vcpus, memory: Math.round(item.memory_bytes / 2 ** 20) })
        : t("maint.size", { vcpus: item.vcpus, memory: gib(item.memory_bytes) })}</td>
      <td><span class=${`badge action-${item.action}`}>${t(/** @type {any} */ (`maint.action.${item.action}`))}</span></td>
      <td class="maint-targets">
        ${item.action !== "migrate"
          ? html`<span class="muted">—</span>`
          : targets.length === 0
            ? html`<span class="muted">${t("maint.targets.none")}</span>`
            : html`<ul>
                ${targets.slice(0, TARGETS_SHOWN).map((id) => html`<li key=${id}><${HostRef} id=${id} hosts=${hosts} /></li>`)}
                ${targets.length > TARGETS_SHOWN && html`<li class="muted">${t("maint.targets.more", { n: targets.length - TARGETS_SHOWN })}</li>`}
              </ul>`}
      </td>
      <td data-fits=${fits}>${fits === "na" ? html`<span class="muted">—</span>` : html`<span class=${`badge fits-${fits}`}>${t(fits === "yes" ? "maint.fits.yes" : "maint.fits.no")}</span>`}</td>
      <td class="maint-reason">${item.blocked_by ? html`<span data-raw>${item.blocked_by}</span>` : html`<span class="muted">—</span>`}</td>
    </tr>`;
}

/** @param {number | null | undefined} ms */
const seconds = (ms) => (ms === null || ms === undefined ? null : (ms / 1000).toFixed(1));

/**
 * The drain's board: where each instance stands, live.
 * @param {{drain: Drain, hosts: Map<string, Host>}} props
 */
export function DrainBoard({ drain, hosts }) {
  const total = drain.items.length;
  const done = drain.moved + drain.released + drain.stayed;
  return html`
    <div data-testid="board" data-status=${drain.status} data-operation=${drain.operation_id}>
      <div class="maint-board-head">
        <${DrainStatus} drain=${drain} />
        <span>${t("maint.board.parallelism", { n: drain.parallelism })}</span>
        <span>${t("maint.board.started")} <time data-raw datetime=${drain.started_at} title=${dateTime(drain.started_at)}>${shortTime(drain.started_at)}</time></span>
        ${drain.ended_at && html`<span>${t("maint.board.ended")} <time data-raw datetime=${drain.ended_at} title=${dateTime(drain.ended_at)}>${shortTime(drain.ended_at)}</time></span>`}
      </div>
      <div class="maint-counts" data-testid="board-counts">
        <progress max=${Math.max(total, 1)} value=${total ? done : 1} aria-label=${t("maint.progress", { done, total })}></progress>
        <span>${t("maint.progress", { done, total })}</span>
        <span>${t("maint.board.counts", { moved: drain.moved, released: drain.released, stayed: drain.stayed, left: drain.left })}</span>
      </div>
      ${total === 0
        ? html`<p class="empty">${t("maint.board.empty")}</p>`
        : html`
          <div class="maint-scroll" role="region" tabindex="0" aria-label=${t("maint.board.title")}>
            <table class="maint-table">
              <thead><tr>
                <th scope="col">${t("maint.col.instance")}</th>
                <th scope="col">${t("maint.col.action")}</th>
                <th scope="col">${t("maint.col.status")}</th>
                <th scope="col">${t("maint.col.target")}</th>
                <th scope="col">${t("maint.col.attempts")}</th>
                <th scope="col">${t("maint.col.times")}</th>
                <th scope="col">${t("maint.col.timings")}</th>
                <th scope="col">${t("maint.col.why")}</th>
              </tr></thead>
              <tbody>
                ${drain.items.map((i) => html`<${MoveRow} key=${i.instance_id} item=${i} hosts=${hosts} />`)}
              </tbody>
            </table>
          </div>`}
    </div>`;
}

/** @param {{item: MoveItem, hosts: Map<string, Host>}} props */
function MoveRow({ item, hosts }) {
  const timings = [
    ["maint.timing.prepare", seconds(item.prepare_ms)],
    ["maint.timing.libvirt", seconds(item.libvirt_ms)],
    ["maint.timing.total", seconds(item.total_ms)],
  ].filter(([, s]) => s !== null);
  const p = item.progress;
  return html`
    <tr data-instance-id=${item.instance_id} data-status=${item.status}>
      <td><${InstanceRef} item=${item} /></td>
      <td><span class=${`badge action-${item.action}`}>${t(/** @type {any} */ (`maint.action.${item.action}`))}</span></td>
      <td><span class=${`badge move-${item.status}`}>${t(/** @type {any} */ (`maint.move.${item.status}`))}</span></td>
      <td><${HostRef} id=${item.target_host} hosts=${hosts} /></td>
      <td class="num" data-attempts=${item.attempts}>${item.attempts}</td>
      <td class="maint-times">
        ${item.started_at
          ? html`<time data-raw datetime=${item.started_at} title=${dateTime(item.started_at)}>${shortTime(item.started_at)}</time>`
          : html`<span class="muted">—</span>`}
        ${item.ended_at && html`<span class="muted"> → </span><time data-raw datetime=${item.ended_at} title=${dateTime(item.ended_at)}>${shortTime(item.ended_at)}</time>`}
      </td>
      <td><div class="maint-timings">
        ${timings.length === 0 && !p && html`<span class="muted">—</span>`}
        ${timings.map(([key, s]) => html`<span>${t(/** @type {any} */ (key), { s: /** @type {string} */ (s) })}</span>`)}
        ${p && item.status === "migrating" && html`<span>${t("maint.timing.copied", {
          done: Math.round(p.data_processed_bytes / 2 ** 20), total: Math.round(p.data_total_bytes / 2 ** 20) })}</span>`}
      </div></td>
      <td class="maint-reason">${item.reason ? html`<span data-raw>${item.reason}</span>` : html`<span class="muted">—</span>`}</td>
    </tr>`;
}
