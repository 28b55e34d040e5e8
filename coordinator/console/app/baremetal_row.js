// One bare-metal server in the list: the seed's eleven columns and its actions.
import { html } from "./html.js";
import { t } from "./i18n.js";
import { dateTime, shortTime } from "./format.js";
import { PowerMenu } from "./baremetal_power.js";

/** @typedef {import("../types/api").components["schemas"]["Baremetal"]} Baremetal */
/** @typedef {import("./baremetal_power.js").PowerAction} PowerAction */
/** @typedef {PowerAction | "console" | "update" | "delete"} RowAction */

/** A state, power or console value as a badge. @param {{kind: string, value: string}} props */
export function Badge({ kind, value }) {
  return html`<span class=${`badge bm-${kind}-${value}`} data-value=${value}>${t(/** @type {any} */ (`bm.${kind}.${value}`))}</span>`;
}

/**
 * @param {{server: Baremetal, selected: boolean, onSelect: (id: string) => void,
 *   onAction: (action: RowAction, server: Baremetal) => void}} props
 */
export function BaremetalRow({ server, selected, onSelect, onAction }) {
  const s = server;
  const running = s.state === "running";
  return html`
    <tr class=${selected ? "is-selected" : ""} data-baremetal-id=${s.id} data-state=${s.state} data-power=${s.power_state}>
      <td class="c-select">
        <input type="checkbox" checked=${selected} onChange=${() => onSelect(s.id)} aria-label=${t("bm.select_row", { name: s.name })} />
      </td>
      <td class="c-name"><a href=${`#/baremetal/${encodeURIComponent(s.id)}`} data-raw>${s.name}</a>
        ${s.label && html`<span class="sub" data-raw>${s.label}</span>`}</td>
      <td class="mono" data-raw>${s.id}</td>
      <td><${Badge} kind="state" value=${s.state} />${s.reason && html`<span class="sub" data-raw title=${s.reason}>${s.reason}</span>`}</td>
      <td data-raw>${s.sn || ""}</td>
      <td class="mono" data-raw>${s.ipmi_ip}</td>
      <td data-raw>${s.tenant_email}</td>
      <td data-raw>${s.model || ""}</td>
      <td data-raw data-col="rack">${s.rack_location}</td>
      <td><${Badge} kind="power_state" value=${s.power_state} /></td>
      <td><${Badge} kind="console_state" value=${s.console_state} /></td>
      <td data-raw title=${dateTime(s.created_at)}>${shortTime(s.created_at)}</td>
      <td><div class="bm-row-actions">
        <${PowerMenu} server=${s} onPick=${(/** @type {PowerAction} */ a) => onAction(a, s)} />
        <button type="button" class="link" data-action="console" disabled=${!running} onClick=${() => onAction("console", s)}>${t("bm.action.console")}</button>
        <button type="button" class="link" data-action="update" disabled=${s.state === "preparing"} onClick=${() => onAction("update", s)}>${t("bm.action.update")}</button>
        <button type="button" class="link" data-action="delete" onClick=${() => onAction("delete", s)}>${t("bm.action.delete")}</button>
      </div></td>
    </tr>`;
}
