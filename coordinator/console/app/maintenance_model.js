// What the maintenance screens read: a host's drain (its current or last one) and its drain
// plan, each read once and again whenever the change feed says something it shows changed
// (the drain's operation, the host, one of its instances). Nothing is re-read on a timer.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { ApiError, call } from "./api.js";

/**
 * @typedef {import("../types/api").components["schemas"]["Drain"]} Drain
 * @typedef {import("../types/api").components["schemas"]["MoveItem"]} MoveItem
 * @typedef {import("../types/api").components["schemas"]["DrainPlan"]} DrainPlan
 * @typedef {import("../types/api").components["schemas"]["PlanItem"]} PlanItem
 * @typedef {import("./events.js").ChangeEvent} ChangeEvent
 */

/**
 * A value read with `read` and read again on each event `concerns` (given the value as it
 * is) says is about it; reads that come while one runs are folded into one more.
 * @template T
 * @param {import("./events.js").ChangeFeed} feed
 * @param {string | null} key what is read (a new key starts afresh); null: nothing
 * @param {() => Promise<T>} read
 * @param {(e: ChangeEvent, value: T | null) => boolean} concerns
 * @returns {{value: T | null, loaded: boolean, error: string | null, reload: () => void,
 *   set: (v: T) => void}}
 */
export function useFollowed(feed, key, read, concerns) {
  const [value, setValue] = useState(/** @type {T | null} */ (null));
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState(/** @type {string | null} */ (null));
  const current = useRef(/** @type {T | null} */ (null));
  const fns = useRef({ read, concerns });
  fns.current = { read, concerns };

  const ops = useMemo(() => {
    let running = false;
    let again = false;
    let alive = true;
    async function load() {
      if (key === null) return;
      if (running) {
        again = true;
        return;
      }
      running = true;
      do {
        again = false;
        try {
          const v = await fns.current.read();
          if (!alive) return;
          current.current = v;
          setValue(v);
          setError(null);
        } catch (err) {
          if (!alive) return;
          setError(err instanceof Error ? err.message : String(err));
        }
      } while (again && alive);
      running = false;
      setLoaded(true);
    }
    /** @param {T} v */
    function set(v) {
      current.current = v;
      setValue(v);
    }
    return { load, set, stop: () => (alive = false) };
  }, [key]);

  useEffect(() => {
    current.current = null;
    setValue(null);
    setLoaded(false);
    setError(null);
    if (key === null) return ops.stop;
    const offEvent = feed.onEvent((e) => {
      if (fns.current.concerns(e, current.current)) ops.load();
    });
    const offReload = feed.onReload(ops.load);
    // Follow the feed first, so that no change between the read and the stream's start is
    // missed; a feed that cannot open yet does not hold the read back for long.
    Promise.race([feed.opened, new Promise((r) => setTimeout(r, 2000))]).then(ops.load);
    return () => {
      ops.stop();
      offEvent();
      offReload();
    };
  }, [feed, ops]);

  return { value, loaded, error, reload: ops.load, set: ops.set };
}

/** @param {string} id */
const hostPath = (id) => `/v1/hosts/${encodeURIComponent(id)}`;

/**
 * The host's current or last drain (null: it never had one), following its operation, the
 * host and the instances it moves.
 * @param {import("./events.js").ChangeFeed} feed
 * @param {string | null} hostId
 */
export function useDrain(feed, hostId) {
  return useFollowed(
    feed,
    hostId,
    async () => {
      try {
        return /** @type {Drain} */ (await call("GET", `${hostPath(/** @type {string} */ (hostId))}/maintenance`));
      } catch (err) {
        if (err instanceof ApiError && err.code === "drain_not_found") return null;
        throw err;
      }
    },
    (e, d) =>
      (e.type === "host" && e.resource_id === hostId) ||
      (e.type === "operation" && !!d && e.resource_id === d.operation_id) ||
      (e.type === "instance" && !!d && d.items.some((i) => i.instance_id === e.resource_id)),
  );
}

/**
 * The host's drain plan (a dry run), read again when a host or an instance changes (room
 * on the other hosts, instances coming and going); `active` false: not read.
 * @param {import("./events.js").ChangeFeed} feed
 * @param {string} hostId
 * @param {boolean} active
 */
export function usePlan(feed, hostId, active) {
  return useFollowed(
    feed,
    active ? hostId : null,
    async () => /** @type {DrainPlan} */ (await call("GET", `${hostPath(hostId)}/maintenance/plan`)),
    (e) => e.type === "host" || e.type === "instance",
  );
}

/** Items of a drain that reached their end. @param {Drain} d */
export function doneCount(d) {
  return d.moved + d.released + d.stayed;
}
