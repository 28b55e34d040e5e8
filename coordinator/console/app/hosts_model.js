// The hosts the Hosts screen shows: every page of GET /v1/hosts once, then kept current from
// the change feed (rows patched by id; a new id fetched alone; a `reload` event re-reads the
// list). Nothing is re-fetched on a timer.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { call, listAll } from "./api.js";

/**
 * @typedef {import("../types/api").components["schemas"]["Host"]} Host
 * @typedef {{byId: Map<string, Host>, hay: Map<string, string>, order: string[]}} Model
 */

/** Fields of a host event's `data` that are not host fields. */
const NOT_FIELDS = new Set(["from", "created", "reenrolled", "orphaned", "deleted"]);

/** @param {Host} h the text the search matches against, lower case */
function haystack(h) {
  return `${h.id} ${h.hostname} ${h.ip} ${h.cluster_id} ${h.cpu_model}`.toLowerCase();
}

/** @param {Host} a @param {Host} b */
function byClusterThenId(a, b) {
  if (a.cluster_id !== b.cluster_id) return a.cluster_id < b.cluster_id ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** @param {import("./events.js").ChangeFeed} feed */
export function useHosts(feed) {
  /** @type {{current: Model}} */
  const model = useRef({ byId: new Map(), hay: new Map(), order: [] });
  const [version, setVersion] = useState(0);
  const [loaded, setLoaded] = useState({ done: false, count: 0 });
  /** @type {[string | null, (e: string | null) => void]} */
  const [error, setError] = useState(/** @type {string | null} */ (null));
  const bump = () => setVersion((v) => v + 1);

  const ops = useMemo(() => {
    /** @type {import("./events.js").ChangeEvent[] | null} events that came while loading */
    let pending = null;

    /** @param {Host} h */
    function put(h) {
      const m = model.current;
      const isNew = !m.byId.has(h.id);
      m.byId.set(h.id, h);
      m.hay.set(h.id, haystack(h));
      if (isNew) {
        m.order.push(h.id);
        m.order.sort((a, b) => byClusterThenId(/** @type {Host} */ (m.byId.get(a)), /** @type {Host} */ (m.byId.get(b))));
      }
    }

    /** @param {Host[]} items the list so far, in the API's order */
    function fill(items) {
      const m = model.current;
      for (let i = m.order.length; i < items.length; i++) {
        const h = items[i];
        m.byId.set(h.id, h);
        m.hay.set(h.id, haystack(h));
        m.order.push(h.id);
      }
    }

    /** @param {string} id */
    async function fetchOne(id) {
      try {
        put(await call("GET", `/v1/hosts/${encodeURIComponent(id)}`));
        bump();
      } catch {
        // Gone again, or the session ended (which the app handles).
      }
    }

    /** @param {import("./events.js").ChangeEvent} e */
    function apply(e) {
      const m = model.current;
      const id = e.resource_id;
      const data = e.data || {};
      if (data.deleted) {
        if (m.byId.delete(id)) {
          m.hay.delete(id);
          m.order = m.order.filter((x) => x !== id);
        }
        return;
      }
      const old = m.byId.get(id);
      if (!old) {
        fetchOne(id);
        return;
      }
      /** @type {Record<string, any>} */
      const next = { ...old };
      for (const [k, v] of Object.entries(data)) if (!NOT_FIELDS.has(k) && k in old) next[k] = v;
      if ("state" in data && e.at) next.updated_at = new Date(e.at).toISOString();
      put(/** @type {Host} */ (next));
    }

    async function load() {
      pending = [];
      setLoaded({ done: false, count: 0 });
      try {
        // The first load shows each page as it comes (the first rows in one round trip);
        // a reload keeps the rows it has until the whole list is read.
        const first = model.current.order.length === 0;
        /** @type {Host[]} */
        const items = await listAll("/v1/hosts", (/** @type {Host[]} */ items) => {
          setLoaded({ done: false, count: items.length });
          if (!first) return;
          fill(items);
          bump();
        });
        const m = model.current;
        if (!first) {
          m.byId = new Map();
          m.hay = new Map();
          for (const h of items) {
            m.byId.set(h.id, h);
            m.hay.set(h.id, haystack(h));
          }
          m.order = items.map((h) => h.id);
        }
        const late = pending;
        pending = null;
        for (const e of late) apply(e);
        setError(null);
      } catch (err) {
        pending = null;
        setError(err instanceof Error ? err.message : String(err));
      }
      setLoaded({ done: true, count: model.current.order.length });
      bump();
    }

    /** @param {import("./events.js").ChangeEvent} e */
    function onEvent(e) {
      if (e.type !== "host") return;
      if (pending) pending.push(e);
      else {
        apply(e);
        bump();
      }
    }

    /** @param {Host} h an answer of a host action: newer than the row */
    function patch(h) {
      if (h && h.id && "state" in h) {
        put(h);
        bump();
      }
    }
    return { load, onEvent, patch };
  }, []);

  useEffect(() => {
    const offEvent = feed.onEvent(ops.onEvent);
    const offReload = feed.onReload(ops.load);
    // Follow the feed first, so that no change between the list's read and the stream's start
    // is missed; a feed that cannot open yet does not hold the list back for long.
    Promise.race([feed.opened, new Promise((r) => setTimeout(r, 2000))]).then(ops.load);
    return () => {
      offEvent();
      offReload();
    };
  }, [feed]);

  const hosts = useMemo(() => {
    const m = model.current;
    return m.order.map((id) => /** @type {Host} */ (m.byId.get(id)));
  }, [version]);
  return { hosts, hay: model.current.hay, loaded, error, patch: ops.patch, version };
}
