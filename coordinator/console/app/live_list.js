// A list kept current from the change feed, for screens other than Hosts (which patches rows
// from the events' data, for 10,000 hosts): every page of the list once, then each event of
// `type` re-reads its one resource (`GET <path>/<id>`), a deleted one is dropped, a `reload`
// re-reads the list. Nothing is re-fetched on a timer.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { call, listAll } from "./api.js";

/**
 * @template {{id: string}} T
 * @param {import("./events.js").ChangeFeed} feed
 * @param {{path: string, type: string, query?: string, accept?: (item: T) => boolean}} opts
 *   `path` the list (and `path/<id>` one item); `query` the list's filters; `accept` which
 *   re-read items belong in this list (default all)
 * @returns {{items: T[], loaded: boolean, error: string | null, put: (item: T) => void,
 *   drop: (id: string) => void, reload: () => void}}
 */
export function useLiveList(feed, { path, type, query, accept }) {
  const byId = useRef(/** @type {Map<string, T>} */ (new Map()));
  const [version, setVersion] = useState(0);
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState(/** @type {string | null} */ (null));
  const acceptRef = useRef(accept);
  acceptRef.current = accept;
  const bump = () => setVersion((v) => v + 1);

  const ops = useMemo(() => {
    /** @type {Set<string> | null} ids changed while the list loads: re-read after it */
    let pending = null;
    /** @param {T} item */
    function put(item) {
      const ok = acceptRef.current ? acceptRef.current(item) : true;
      if (ok) byId.current.set(item.id, item);
      else byId.current.delete(item.id);
      bump();
    }
    /** @param {string} id */
    function drop(id) {
      if (byId.current.delete(id)) bump();
    }
    /** @param {string} id */
    async function refresh(id) {
      try {
        put(await call("GET", `${path}/${encodeURIComponent(id)}`));
      } catch (err) {
        if (err && /** @type {any} */ (err).status === 404) drop(id);
      }
    }
    async function load() {
      pending = new Set();
      try {
        /** @type {T[]} */
        const items = await listAll(query ? `${path}?${query}` : path);
        const m = new Map();
        for (const it of items) if (!acceptRef.current || acceptRef.current(it)) m.set(it.id, it);
        byId.current = m;
        setError(null);
      } catch (err) {
        setError(err instanceof Error ? err.message : String(err));
      }
      const late = pending;
      pending = null;
      setLoaded(true);
      bump();
      for (const id of late) refresh(id);
    }
    /** @param {import("./events.js").ChangeEvent} e */
    function onEvent(e) {
      if (e.type !== type) return;
      if (pending) pending.add(e.resource_id);
      else if (e.data && e.data.deleted) drop(e.resource_id);
      else refresh(e.resource_id);
    }
    return { put, drop, load, onEvent };
  }, [path, type, query]);

  useEffect(() => {
    const offEvent = feed.onEvent(ops.onEvent);
    const offReload = feed.onReload(ops.load);
    setLoaded(false);
    Promise.race([feed.opened, new Promise((r) => setTimeout(r, 2000))]).then(ops.load);
    return () => {
      offEvent();
      offReload();
    };
  }, [feed, ops]);

  const items = useMemo(() => [...byId.current.values()], [version]);
  return { items, loaded, error, put: ops.put, drop: ops.drop, reload: ops.load };
}
