// The clusters, for the clusters tab and the enrollment command's picker. Clusters have no
// change-feed events: the list is read once and again after a change made here.
import { useListOnce } from "./list_once.js";

/** @typedef {import("../types/api").components["schemas"]["Cluster"]} Cluster */

/** @returns {{clusters: Cluster[], loaded: boolean, error: string | null, reload: () => Promise<void>}} */
export function useClusters() {
  const { items, ...rest } = /** @type {ReturnType<typeof useListOnce<Cluster>>} */ (useListOnce("/v1/clusters"));
  return { clusters: items, ...rest };
}
