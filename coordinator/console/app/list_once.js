// A list with no change-feed events (tenants, clusters, API tokens, the audit log): every
// page of it read once, and again when asked (after a change made here, or a refresh).
import { useCallback, useEffect, useState } from "preact/hooks";
import { listAll } from "./api.js";

/**
 * @template T
 * @param {string} path the list's path
 * @param {boolean} [enabled] false: never read (a session that may not list it)
 * @returns {{items: T[], loaded: boolean, error: string | null, reload: () => Promise<void>}}
 */
export function useListOnce(path, enabled = true) {
  const [items, setItems] = useState(/** @type {T[]} */ ([]));
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState(/** @type {string | null} */ (null));
  const reload = useCallback(async () => {
    if (!enabled) return;
    try {
      setItems(await listAll(path));
      setError(null);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
    setLoaded(true);
  }, [path, enabled]);
  useEffect(() => {
    reload();
  }, [reload]);
  return { items, loaded, error, reload };
}
