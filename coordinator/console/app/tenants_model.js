// The tenants, for the admin's pickers (by email) and the tenants tab. Tenants have no
// change-feed events: the list is read once and again after a change made here.
import { useCallback, useEffect, useState } from "preact/hooks";
import { listAll } from "./api.js";

/** @typedef {import("../types/api").components["schemas"]["Tenant"]} Tenant */

/**
 * @param {boolean} enabled false for a tenant session (which may not list tenants)
 * @returns {{tenants: Tenant[], loaded: boolean, error: string | null, reload: () => Promise<void>}}
 */
export function useTenants(enabled) {
  const [tenants, setTenants] = useState(/** @type {Tenant[]} */ ([]));
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState(/** @type {string | null} */ (null));
  const reload = useCallback(async () => {
    if (!enabled) return;
    try {
      /** @type {Tenant[]} */
      const all = await listAll("/v1/tenants");
      setTenants(all);
      setError(null);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
    setLoaded(true);
  }, [enabled]);
  useEffect(() => {
    reload();
  }, [reload]);
  return { tenants, loaded, error, reload };
}
