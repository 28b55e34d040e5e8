// The tenants, for the admin's pickers (by email) and the tenants tab. Tenants have no
// change-feed events: the list is read once and again after a change made here.
import { useListOnce } from "./list_once.js";

/** @typedef {import("../types/api").components["schemas"]["Tenant"]} Tenant */

/**
 * @param {boolean} enabled false for a tenant session (which may not list tenants)
 * @returns {{tenants: Tenant[], loaded: boolean, error: string | null, reload: () => Promise<void>}}
 */
export function useTenants(enabled) {
  const { items, ...rest } = /** @type {ReturnType<typeof useListOnce<Tenant>>} */ (useListOnce("/v1/tenants", enabled));
  return { tenants: items, ...rest };
}
