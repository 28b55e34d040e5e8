// The clusters, for the clusters tab and the enrollment command's picker. Clusters have no
// change-feed events: the list is read once and again after a change made here.
import { useCallback, useEffect, useState } from "preact/hooks";
import { listAll } from "./api.js";

/** @typedef {import("../types/api").components["schemas"]["Cluster"]} Cluster */

/** @returns {{clusters: Cluster[], loaded: boolean, error: string | null, reload: () => Promise<void>}} */
export function useClusters() {
  const [clusters, setClusters] = useState(/** @type {Cluster[]} */ ([]));
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState(/** @type {string | null} */ (null));
  const reload = useCallback(async () => {
    try {
      /** @type {Cluster[]} */
      const all = await listAll("/v1/clusters");
      setClusters(all);
      setError(null);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
    setLoaded(true);
  }, []);
  useEffect(() => {
    reload();
  }, [reload]);
  return { clusters, loaded, error, reload };
}
