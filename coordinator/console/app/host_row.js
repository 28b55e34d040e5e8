// One host in the Hosts list: the seed's fields, state, agent, and the actions its state allows.
import { Component } from "preact";
import { html } from "./html.js";
import { t } from "./i18n.js";
import { dateTime, gib, shortTime } from "./format.js";
import { UsageBar } from "./usage_bar.js";

/** @typedef {import("./hosts_model.js").Host} Host */
/** @typedef {"lock" | "unlock" | "enter" | "exit"} HostAction */

/**
 * What each state allows, as the host state table does (common/src/host.rs).
 * @type {Record<string, HostAction[]>}
 */
export const ACTIONS_BY_STATE = {
  available: ["lock"],
  locked: ["unlock", "enter"],
  entering_maintenance: [],
  maintenance: ["exit"],
};

/**
 * @typedef {{host: Host, index: number, selected: boolean, lang?: string, onSelect: (id: string) => void,
 *   onAction: (action: HostAction, ids: string[]) => void}} HostRowProps
 */

/**
 * A HostRow that renders again only when its host (a new object per change), selection,
 * position or language changed: a search or one host's event repaints only the rows that
 * differ. Its callbacks must not depend on the state of the render that made them.
 * @extends {Component<HostRowProps>}
 */
export class MemoHostRow extends Component {
  /** @param {HostRowProps} next */
  shouldComponentUpdate(next) {
    const p = this.props;
    return next.host !== p.host || next.selected !== p.selected || next.index !== p.index || next.lang !== p.lang;
  }

  render() {
    return HostRow(this.props);
  }
}

/** @param {HostRowProps} props */
export function HostRow({ host, index, selected, onSelect, onAction }) {
  const h = host;
  return html`
    <div class=${`row host-row${selected ? " is-selected" : ""}`} role="row" aria-rowindex=${index + 2}
      data-host-id=${h.id} data-state=${h.state}>
      <span role="cell" class="c-select">
        <input type="checkbox" checked=${selected} onChange=${() => onSelect(h.id)}
          aria-label=${t("hosts.select_row", { id: h.id })} />
      </span>
      <span role="cell" class="c-id"><a class="mono" href=${`#/hosts/${encodeURIComponent(h.id)}`} data-raw data-testid="host-link">${h.id}</a><span class="sub" data-raw>${h.hostname}</span></span>
      <span role="cell" class="c-ip mono" data-raw>${h.ip}</span>
      <span role="cell" class="c-cluster" data-raw>${h.cluster_id}</span>
      <span role="cell" class="c-cpu" data-raw title=${h.cpu_model}>${h.cpu_model}</span>
      <span role="cell" class="c-cores">
        <${UsageBar} used=${h.allocated_cores} total=${h.total_cores} label=${t("hosts.col.cores")}
          text=${`${h.allocated_cores} / ${h.total_cores}`} />
      </span>
      <span role="cell" class="c-mem">
        <${UsageBar} used=${h.allocated_memory_bytes} total=${h.total_memory_bytes} label=${t("hosts.col.memory")}
          text=${t("unit.gib_of", { used: gib(h.allocated_memory_bytes), total: gib(h.total_memory_bytes) })} />
      </span>
      <span role="cell" class="c-state"><span class=${`badge state-${h.state}`}>${t(/** @type {any} */ (`state.${h.state}`))}</span></span>
      <span role="cell" class="c-agent"><span class=${`badge agent-${h.agent}`}>${t(/** @type {any} */ (`agent.${h.agent}`))}</span></span>
      <span role="cell" class="c-updated" data-raw title=${dateTime(h.updated_at)}>${shortTime(h.updated_at)}</span>
      <span role="cell" class="c-actions">
        ${(ACTIONS_BY_STATE[h.state] || []).map((a) => html`
          <button type="button" class="link" data-action=${a} onClick=${() => onAction(a, [h.id])}>${t(`action.${a}`)}</button>`)}
      </span>
    </div>`;
}
