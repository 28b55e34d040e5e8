// The Hosts screen (admin): every host with the seed's fields, instant fuzzy search, facets
// by cluster, state and agent, and lock / unlock / maintenance on many hosts at once. The
// search and facets live in the URL.
import { useMemo, useState } from "preact/hooks";
import { html } from "./html.js";
import { t } from "./i18n.js";
import { replaceParams } from "./route.js";
import { fuzzyScore } from "./fuzzy.js";
import { useHosts } from "./hosts_model.js";
import { HostRow } from "./host_row.js";
import { Facet } from "./facet.js";
import { VirtualList } from "./virtual_list.js";
import { BatchResults, ConfirmBar, runBatch } from "./host_batch.js";

/** @typedef {import("./hosts_model.js").Host} Host */
/** @typedef {import("./host_row.js").HostAction} HostAction */
/** @typedef {"cluster" | "state" | "agent"} FacetName */

const ROW_HEIGHT = 44;
const STATES = ["available", "locked", "entering_maintenance", "maintenance"];
const AGENTS = ["online", "offline"];
/** @type {FacetName[]} */
const FACETS = ["cluster", "state", "agent"];

/** @param {URLSearchParams} params @param {string} name */
function setParam(params, name) {
  return new Set((params.get(name) || "").split(",").filter(Boolean));
}

/** @param {Host} h @param {FacetName} f */
function facetValue(h, f) {
  return f === "cluster" ? h.cluster_id : f === "state" ? h.state : h.agent;
}

/**
 * @param {{feed: import("./events.js").ChangeFeed, route: import("./route.js").Route}} props
 */
export function HostsScreen({ feed, route }) {
  const { hosts, hay, loaded, error, patch, version } = useHosts(feed);
  const [q, setQ] = useState(() => route.params.get("q") || "");
  /** @type {[Record<FacetName, Set<string>>, (f: Record<FacetName, Set<string>>) => void]} */
  const [chosen, setChosen] = useState(() => ({
    cluster: setParam(route.params, "cluster"),
    state: setParam(route.params, "state"),
    agent: setParam(route.params, "agent"),
  }));
  const [selected, setSelected] = useState(() => new Set(/** @type {string[]} */ ([])));
  /** @type {[{action: HostAction, ids: string[]} | null, (c: {action: HostAction, ids: string[]} | null) => void]} */
  const [confirm, setConfirm] = useState(/** @type {{action: HostAction, ids: string[]} | null} */ (null));
  /** @type {[import("./host_batch.js").Batch | null, (b: any) => void]} */
  const [batch, setBatch] = useState(/** @type {import("./host_batch.js").Batch | null} */ (null));

  /** @param {string} nextQ @param {Record<FacetName, Set<string>>} nextChosen */
  function remember(nextQ, nextChosen) {
    replaceParams("/hosts", {
      q: nextQ,
      cluster: [...nextChosen.cluster].join(","),
      state: [...nextChosen.state].join(","),
      agent: [...nextChosen.agent].join(","),
    });
  }

  /** @param {string} value */
  function search(value) {
    setQ(value);
    remember(value, chosen);
  }

  /** @param {FacetName} f @param {string} value */
  function toggle(f, value) {
    const s = new Set(chosen[f]);
    if (s.has(value)) s.delete(value);
    else s.add(value);
    const next = { ...chosen, [f]: s };
    setChosen(next);
    remember(q, next);
  }

  function clearFilters() {
    const next = { cluster: new Set(), state: new Set(), agent: new Set() };
    setChosen(next);
    setQ("");
    remember("", next);
  }

  // The search first (ranked by score when there is a query), then the facets.
  const matched = useMemo(() => {
    const query = q.trim().toLowerCase();
    if (!query) return hosts;
    /** @type {[Host, number][]} */
    const scored = [];
    for (const h of hosts) {
      const s = fuzzyScore(query, hay.get(h.id) || "");
      if (s >= 0) scored.push([h, s]);
    }
    scored.sort((a, b) => b[1] - a[1]);
    return scored.map((x) => x[0]);
  }, [hosts, q]);

  /** @param {Host} h @param {FacetName | null} except */
  const passes = (h, except) =>
    FACETS.every((f) => f === except || chosen[f].size === 0 || chosen[f].has(facetValue(h, f)));

  const shown = useMemo(() => matched.filter((h) => passes(h, null)), [matched, chosen]);

  // Each facet's counts: the rows it would show with the other facets as they are.
  const counts = useMemo(() => {
    /** @type {Record<FacetName, Map<string, number>>} */
    const c = { cluster: new Map(), state: new Map(), agent: new Map() };
    for (const h of matched) {
      for (const f of FACETS) {
        if (!passes(h, f)) continue;
        const v = facetValue(h, f);
        c[f].set(v, (c[f].get(v) || 0) + 1);
      }
    }
    return c;
  }, [matched, chosen]);

  const clusters = useMemo(() => [...new Set(hosts.map((h) => h.cluster_id))].sort(), [hosts]);

  /** @param {string} id */
  function select(id) {
    const s = new Set(selected);
    if (s.has(id)) s.delete(id);
    else s.add(id);
    setSelected(s);
  }

  const allShownSelected = shown.length > 0 && shown.every((h) => selected.has(h.id));
  function selectAll() {
    setSelected(allShownSelected ? new Set() : new Set(shown.map((h) => h.id)));
  }

  /** @param {HostAction} action @param {string[]} ids */
  async function run(action, ids) {
    setConfirm(null);
    /** @type {import("./host_batch.js").HostResult[]} */
    const results = [];
    setBatch({ action, ids, results: [], running: true });
    await runBatch(action, ids, (r, answer) => {
      results.push(r);
      if (r.ok) patch(answer);
      setBatch({ action, ids, results: [...results], running: true });
    });
    setBatch({ action, ids, results: [...results], running: false });
    setSelected(new Set(results.filter((r) => !r.ok).map((r) => r.id)));
  }

  const selectedIds = [...selected].filter((id) => hay.has(id));
  /** @type {HostAction[]} */
  const batchActions = ["lock", "unlock", "enter", "exit"];

  return html`
    <section class="hosts" aria-labelledby="hosts-title" data-version=${version}>
      <div class="screen-head">
        <h1 id="hosts-title">${t("hosts.title")}</h1>
        <input type="search" class="search" aria-label=${t("hosts.search")} placeholder=${t("hosts.search")}
          value=${q} onInput=${(/** @type {any} */ e) => search(e.currentTarget.value)} />
        <span class="count" data-testid="host-count">
          ${loaded.done ? t("hosts.count", { shown: shown.length, total: hosts.length }) : t("hosts.loading", { n: loaded.count })}
        </span>
      </div>
      ${error && html`<p class="error" role="alert" data-raw>${error}</p>`}
      <div class="hosts-body">
        <aside class="facets" aria-label=${t("facet.label")}>
          <${Facet} name="cluster" title=${t("facet.cluster")} selected=${chosen.cluster} onToggle=${(/** @type {string} */ v) => toggle("cluster", v)}
            values=${clusters.map((c) => ({ value: c, label: c, count: counts.cluster.get(c) || 0, raw: true }))} />
          <${Facet} name="state" title=${t("facet.state")} selected=${chosen.state} onToggle=${(/** @type {string} */ v) => toggle("state", v)}
            values=${STATES.map((s) => ({ value: s, label: t(/** @type {any} */ (`state.${s}`)), count: counts.state.get(s) || 0 }))} />
          <${Facet} name="agent" title=${t("facet.agent")} selected=${chosen.agent} onToggle=${(/** @type {string} */ v) => toggle("agent", v)}
            values=${AGENTS.map((a) => ({ value: a, label: t(/** @type {any} */ (`agent.${a}`)), count: counts.agent.get(a) || 0 }))} />
          <button type="button" class="link" onClick=${clearFilters}>${t("facet.clear")}</button>
        </aside>
        <div class="hosts-main">
          <div class="toolbar" role="toolbar" aria-label=${t("hosts.batch")}>
            <span data-testid="selected-count">${t("hosts.selected", { n: selectedIds.length })}</span>
            ${batchActions.map((a) => html`
              <button type="button" data-batch=${a} disabled=${selectedIds.length === 0}
                onClick=${() => setConfirm({ action: a, ids: selectedIds })}>${t(`action.${a}`)}</button>`)}
            <button type="button" class="link" disabled=${selectedIds.length === 0} onClick=${() => setSelected(new Set())}>${t("hosts.clear_selection")}</button>
          </div>
          ${confirm && html`<${ConfirmBar} action=${confirm.action} count=${confirm.ids.length}
            onConfirm=${() => run(confirm.action, confirm.ids)} onCancel=${() => setConfirm(null)} />`}
          ${batch && html`<${BatchResults} batch=${batch} onRetry=${(/** @type {string[]} */ ids) => run(batch.action, ids)}
            onClose=${() => setBatch(null)} />`}
          <div class="table" role="table" aria-label=${t("hosts.title")} aria-rowcount=${shown.length + 1}>
            <div class="row head" role="row" aria-rowindex="1">
              <span role="columnheader" class="c-select">
                <input type="checkbox" checked=${allShownSelected} onChange=${selectAll} aria-label=${t("hosts.select_all")} />
              </span>
              <span role="columnheader">${t("hosts.col.id")}</span>
              <span role="columnheader">${t("hosts.col.ip")}</span>
              <span role="columnheader">${t("hosts.col.cluster")}</span>
              <span role="columnheader">${t("hosts.col.cpu")}</span>
              <span role="columnheader">${t("hosts.col.cores")}</span>
              <span role="columnheader">${t("hosts.col.memory")}</span>
              <span role="columnheader">${t("hosts.col.state")}</span>
              <span role="columnheader">${t("hosts.col.agent")}</span>
              <span role="columnheader">${t("hosts.col.updated")}</span>
              <span role="columnheader">${t("hosts.col.actions")}</span>
            </div>
            <${VirtualList} items=${shown} rowHeight=${ROW_HEIGHT} label=${t("hosts.title")}
              empty=${loaded.done ? t("hosts.empty") : ""}
              renderRow=${(/** @type {Host} */ h, /** @type {number} */ i) => html`<${HostRow} key=${h.id} host=${h} index=${i}
                selected=${selected.has(h.id)} onSelect=${select} onAction=${(/** @type {HostAction} */ a, /** @type {string[]} */ ids) => setConfirm({ action: a, ids })} />`} />
          </div>
        </div>
      </div>
    </section>`;
}
