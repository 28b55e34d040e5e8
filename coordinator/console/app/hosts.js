// The Hosts screen (admin): every host with the seed's fields, instant fuzzy search, facets
// by cluster, state and agent, and lock / unlock / maintenance on many hosts at once. The
// search and facets live in the URL.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { html } from "./html.js";
import { lang, t } from "./i18n.js";
import { replaceParams } from "./route.js";
import { fuzzyScore } from "./fuzzy.js";
import { useHosts } from "./hosts_model.js";
import { MemoHostRow } from "./host_row.js";
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

/** While typing, the URL takes the search at most this often (Chromium throttles a flood of history writes). */
const URL_DELAY_MS = 250;
/** Queries whose matches are kept (for narrowing and for erasing back to them). */
const CACHED_QUERIES = 64;

/** A score and a position in one number, so that a typed array sorts them natively (best first, then list order). */
const POSITIONS = 2 ** 21;
const TOP_SCORE = 2 ** 24;

/**
 * @typedef {{hays: string[], values: Record<FacetName, string[]>, codes: Record<FacetName, Int32Array>}} Index
 *   per host (by position in the list): its search text and each facet's value as a small number
 * @typedef {{version: number, byQuery: Map<string, {matches: Int32Array, ranked: Int32Array}>}} SearchCache
 */

/** @param {Host[]} hosts @param {Map<string, string>} hay @returns {Index} */
function indexOf(hosts, hay) {
  /** @type {Record<FacetName, string[]>} */
  const values = { cluster: [], state: [], agent: [] };
  /** @type {Record<FacetName, Int32Array>} */
  const codes = { cluster: new Int32Array(hosts.length), state: new Int32Array(hosts.length), agent: new Int32Array(hosts.length) };
  for (const f of FACETS) {
    /** @type {Map<string, number>} */
    const seen = new Map();
    const out = codes[f];
    for (let i = 0; i < hosts.length; i++) {
      const v = facetValue(hosts[i], f);
      let c = seen.get(v);
      if (c === undefined) {
        c = values[f].length;
        values[f].push(v);
        seen.set(v, c);
      }
      out[i] = c;
    }
  }
  return { hays: hosts.map((h) => hay.get(h.id) || ""), values, codes };
}

/**
 * The positions of the hosts matching `query` (lower case, trimmed), best first; null for
 * every host in list order. A query that extends an earlier one can only match what that one
 * matched (fuzzy: its characters in order), so only those are scored again; earlier queries'
 * answers are kept until the hosts change.
 * @param {SearchCache} cache @param {number} version @param {string[]} hays @param {string} query
 * @returns {Int32Array | null}
 */
function search(cache, version, hays, query) {
  if (!query) return null;
  if (cache.version !== version) {
    cache.version = version;
    cache.byQuery = new Map();
  }
  const hit = cache.byQuery.get(query);
  if (hit) return hit.ranked;
  /** @type {Int32Array | null} */
  let base = null;
  for (const [k, v] of cache.byQuery) {
    if (query.startsWith(k) && (!base || v.matches.length < base.length)) base = v.matches;
  }
  const n = base ? base.length : hays.length;
  const matches = new Int32Array(n);
  const keys = new Float64Array(n);
  let m = 0;
  for (let j = 0; j < n; j++) {
    const i = base ? base[j] : j;
    const s = fuzzyScore(query, hays[i]);
    if (s < 0) continue;
    matches[m] = i;
    keys[m] = (TOP_SCORE - Math.min(s, TOP_SCORE - 1)) * POSITIONS + i;
    m++;
  }
  const sorted = keys.subarray(0, m).sort();
  const ranked = new Int32Array(m);
  for (let j = 0; j < m; j++) ranked[j] = sorted[j] % POSITIONS;
  if (cache.byQuery.size >= CACHED_QUERIES) {
    const oldest = cache.byQuery.keys().next().value;
    if (oldest !== undefined) cache.byQuery.delete(oldest);
  }
  cache.byQuery.set(query, { matches: matches.slice(0, m), ranked });
  return ranked;
}

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

  /** @type {{current: ReturnType<typeof setTimeout> | undefined}} */
  const urlTimer = useRef(undefined);
  const urlWritten = useRef(0);
  const urlSeq = useRef(0);
  useEffect(() => () => clearTimeout(urlTimer.current), []);

  /**
   * Puts the search and facets in the URL: at once, or while typing after the next paint and
   * at most once per URL_DELAY_MS (the latest value last), not one history write per key.
   * @param {string} nextQ @param {Record<FacetName, Set<string>>} nextChosen @param {boolean} [typing]
   */
  function remember(nextQ, nextChosen, typing) {
    clearTimeout(urlTimer.current);
    const seq = ++urlSeq.current;
    const write = () => {
      if (seq !== urlSeq.current) return; // a later call writes its own
      urlWritten.current = Date.now();
      replaceParams("/hosts", {
        q: nextQ,
        cluster: [...nextChosen.cluster].join(","),
        state: [...nextChosen.state].join(","),
        agent: [...nextChosen.agent].join(","),
      });
    };
    if (!typing) {
      write();
      return;
    }
    // Off the keystroke's path: after the filtered rows are painted, or once the throttle allows.
    const wait = urlWritten.current + URL_DELAY_MS - Date.now();
    if (wait > 0) urlTimer.current = setTimeout(write, wait);
    else requestAnimationFrame(() => {
      urlTimer.current = setTimeout(write, 0);
    });
  }

  /** @param {string} value */
  function onSearch(value) {
    setQ(value);
    remember(value, chosen, true);
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
  const index = useMemo(() => indexOf(hosts, hay), [hosts]);
  /** @type {{current: SearchCache}} */
  const cache = useRef({ version: -1, byQuery: new Map() });
  const matched = useMemo(() => search(cache.current, version, index.hays, q.trim().toLowerCase()), [index, q]);

  // In one pass: the rows the facets let through, and each facet's counts (the rows it would
  // show with the other facets as they are: a host failing only that facet counts there).
  const { shown, counts } = useMemo(() => {
    /** @type {Host[]} */
    const rows = [];
    const { values, codes } = index;
    const tally = { cluster: new Int32Array(values.cluster.length), state: new Int32Array(values.state.length), agent: new Int32Array(values.agent.length) };
    // Per facet with a choice: which of its values are chosen.
    const active = FACETS.filter((f) => chosen[f].size > 0).map((f) => ({
      f, codes: codes[f], tally: tally[f], ok: Uint8Array.from(values[f], (v) => (chosen[f].has(v) ? 1 : 0)),
    }));
    const [cl, st, ag] = [codes.cluster, codes.state, codes.agent];
    const n = matched ? matched.length : hosts.length;
    for (let j = 0; j < n; j++) {
      const i = matched ? matched[j] : j;
      let failed = -1;
      let fails = 0;
      for (let k = 0; k < active.length; k++) {
        if (!active[k].ok[active[k].codes[i]]) {
          failed = k;
          fails++;
        }
      }
      if (fails === 0) {
        rows.push(hosts[i]);
        tally.cluster[cl[i]]++;
        tally.state[st[i]]++;
        tally.agent[ag[i]]++;
      } else if (fails === 1) {
        const a = active[failed];
        a.tally[a.codes[i]]++;
      }
    }
    /** @type {Record<FacetName, Map<string, number>>} */
    const c = { cluster: new Map(), state: new Map(), agent: new Map() };
    for (const f of FACETS) values[f].forEach((v, k) => c[f].set(v, tally[f][k]));
    return { shown: rows, counts: c };
  }, [matched, chosen, index]);

  const clusters = useMemo(() => [...new Set(hosts.map((h) => h.cluster_id))].sort(), [hosts]);

  // The rows' callbacks (rows render again only when their host changes): they read no state.
  const rowCallbacks = useMemo(() => ({
    /** @param {string} id */
    select(id) {
      setSelected((/** @type {Set<string>} */ old) => {
        const s = new Set(old);
        if (s.has(id)) s.delete(id);
        else s.add(id);
        return s;
      });
    },
    /** @param {HostAction} action @param {string[]} ids */
    action(action, ids) {
      setConfirm({ action, ids });
    },
  }), []);

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
          value=${q} onInput=${(/** @type {any} */ e) => onSearch(e.currentTarget.value)} />
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
              renderRow=${(/** @type {Host} */ h, /** @type {number} */ i) => html`<${MemoHostRow} key=${i} host=${h} index=${i} lang=${lang()}
                selected=${selected.has(h.id)} onSelect=${rowCallbacks.select} onAction=${rowCallbacks.action} />`} />
          </div>
        </div>
      </div>
    </section>`;
}
