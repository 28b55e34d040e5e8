// A host's Instances tab: every instance on the host (GET /v1/hosts/{id}/instances, all pages)
// with the seed's twelve fields and an instant fuzzy search (in the URL); kept current from
// the change feed (an instance event re-reads that one instance: kept if it is still here).
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { html } from "./html.js";
import { call, listAll } from "./api.js";
import { t } from "./i18n.js";
import { dateTime, gib } from "./format.js";
import { fuzzyScore } from "./fuzzy.js";

/** @typedef {import("../types/api").components["schemas"]["Instance"]} Instance */

/** @param {Instance} i */
function haystack(i) {
  return [i.name, i.id, i.resource_id, i.tenant_email, i.host_ip, i.image_id, i.gpu_type, i.state]
    .filter(Boolean).join(" ").toLowerCase();
}

/**
 * The instances on host `id`, kept current.
 * @param {import("./events.js").ChangeFeed} feed
 * @param {string} id
 */
export function useHostInstances(feed, id) {
  const byId = useRef(/** @type {Map<string, Instance>} */ (new Map()));
  const [version, setVersion] = useState(0);
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState(/** @type {string | null} */ (null));
  const ops = useMemo(() => {
    let alive = true;
    /** @type {Set<string> | null} */
    let pending = null;
    const bump = () => alive && setVersion((v) => v + 1);
    /** @param {string} iid */
    async function refresh(iid) {
      try {
        /** @type {Instance} */
        const inst = await call("GET", `/v1/instances/${encodeURIComponent(iid)}`);
        if (inst.host_id === id) byId.current.set(iid, inst);
        else byId.current.delete(iid);
      } catch (err) {
        if (/** @type {any} */ (err).status === 404) byId.current.delete(iid);
      }
      bump();
    }
    async function load() {
      pending = new Set();
      try {
        /** @type {Instance[]} */
        const items = await listAll(`/v1/hosts/${encodeURIComponent(id)}/instances`);
        byId.current = new Map(items.map((i) => [i.id, i]));
        if (alive) setError(null);
      } catch (err) {
        if (alive) setError(err instanceof Error ? err.message : String(err));
      }
      const late = pending;
      pending = null;
      if (alive) setLoaded(true);
      bump();
      for (const iid of late) refresh(iid);
    }
    /** @param {import("./events.js").ChangeEvent} e */
    function onEvent(e) {
      if (e.type !== "instance") return;
      if (pending) pending.add(e.resource_id);
      else if (e.data && e.data.deleted) {
        if (byId.current.delete(e.resource_id)) bump();
      } else refresh(e.resource_id);
    }
    return { load, onEvent, stop: () => { alive = false; } };
  }, [id]);
  useEffect(() => {
    const offEvent = feed.onEvent(ops.onEvent);
    const offReload = feed.onReload(ops.load);
    Promise.race([feed.opened, new Promise((r) => setTimeout(r, 2000))]).then(ops.load);
    return () => {
      ops.stop();
      offEvent();
      offReload();
    };
  }, [feed, ops]);
  const items = useMemo(() => [...byId.current.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)), [version]);
  return { items, loaded, error };
}

/**
 * @param {{id: string, feed: import("./events.js").ChangeFeed, q: string,
 *   onSearch: (q: string) => void}} props
 */
export function HostInstances({ id, feed, q, onSearch }) {
  const { items, loaded, error } = useHostInstances(feed, id);
  const shown = useMemo(() => {
    const query = q.trim().toLowerCase();
    if (!query) return items;
    return items
      .map((i) => /** @type {[Instance, number]} */ ([i, fuzzyScore(query, haystack(i))]))
      .filter((x) => x[1] >= 0)
      .sort((a, b) => b[1] - a[1])
      .map((x) => x[0]);
  }, [items, q]);
  return html`
    <div class="hd-instances">
      <div class="toolbar">
        <input type="search" class="search" aria-label=${t("hd.i.search")} placeholder=${t("hd.i.search")}
          value=${q} onInput=${(/** @type {any} */ e) => onSearch(e.currentTarget.value)} />
        <span class="count" data-testid="hd-instance-count">${loaded ? t("hd.i.count", { shown: shown.length, total: items.length }) : t("hd.loading")}</span>
      </div>
      ${error && html`<p class="error" role="alert" data-raw>${error}</p>`}
      <div class="hd-scroll" tabindex="0">
        <table class="hd-table" aria-label=${t("hd.tab.instances")}>
          <thead><tr>
            <th scope="col">${t("hd.i.name")}</th><th scope="col">${t("hd.i.id")}</th>
            <th scope="col">${t("hd.i.resource_id")}</th><th scope="col">${t("hd.i.tenant")}</th>
            <th scope="col">${t("hosts.col.ip")}</th><th scope="col">${t("hd.i.image")}</th>
            <th scope="col">${t("hd.i.gpu")}</th><th scope="col">${t("hd.i.cpu")}</th>
            <th scope="col">${t("hosts.col.memory")}</th><th scope="col">${t("hosts.col.state")}</th>
            <th scope="col">${t("hd.f.created_at")}</th><th scope="col">${t("hosts.col.updated")}</th>
          </tr></thead>
          <tbody>
            ${shown.map((i) => html`
              <tr key=${i.id} data-instance=${i.id} data-state=${i.state}>
                <td data-raw>${i.name}</td>
                <td class="mono" data-raw><a href=${`#/instances/${encodeURIComponent(i.id)}`}>${i.id}</a></td>
                <td class="mono" data-raw>${i.resource_id || "—"}</td>
                <td data-raw>${i.tenant_email}</td>
                <td class="mono" data-raw>${i.host_ip || "—"}</td>
                <td class="mono" data-raw>${i.image_id || "—"}</td>
                <td data-raw>${i.gpu_type || "—"}</td>
                <td data-raw>${i.vcpus}</td>
                <td data-raw>${`${gib(i.memory_bytes)} GiB`}</td>
                <td><span class=${`badge istate-${i.state}`}>${t(/** @type {any} */ (`hd.istate.${i.state}`))}</span></td>
                <td data-raw>${dateTime(i.created_at)}</td>
                <td data-raw>${dateTime(i.updated_at)}</td>
              </tr>`)}
          </tbody>
        </table>
        ${loaded && shown.length === 0 && html`<p class="empty">${items.length ? t("hd.i.no_match") : t("hd.i.none")}</p>`}
      </div>
    </div>`;
}
