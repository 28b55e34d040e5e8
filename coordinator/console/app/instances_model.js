// What the Instances screen knows of an instance: its states, what each allows (as the
// lifecycle's state table in common/src/instance.rs), and one instance kept current from the
// change feed.
import { useEffect, useState } from "preact/hooks";
import { call } from "./api.js";

/** @typedef {import("../types/api").components["schemas"]["Instance"]} Instance */
/** @typedef {import("../types/api").components["schemas"]["Eip"]} Eip */
/** @typedef {import("../types/api").components["schemas"]["Image"]} Image */
/** @typedef {import("../types/api").components["schemas"]["Host"]} Host */
/** @typedef {"start" | "stop" | "reboot" | "migrate" | "export" | "delete"} InstanceAction */

export const STATES = ["creating", "running", "stopped", "starting", "stopping", "rebooting", "migrating", "deleting", "error"];
const SETTLED = new Set(["running", "stopped", "error"]);

/**
 * The actions an instance in `state` allows; `migrate` for admins only.
 * @param {string} state
 * @param {boolean} isAdmin
 * @returns {InstanceAction[]}
 */
export function actionsFor(state, isAdmin) {
  /** @type {InstanceAction[]} */
  const out = [];
  if (state === "stopped" || state === "error") out.push("start");
  if (state === "running" || state === "error") out.push("stop");
  if (state === "running") out.push("reboot");
  if (state === "running" && isAdmin) out.push("migrate");
  if (state === "running" || state === "stopped") out.push("export");
  if (SETTLED.has(state)) out.push("delete");
  return out;
}

/** Whether an instance's state is one a job is working on (it changes by itself). */
export function isBusy(/** @type {string} */ state) {
  return !SETTLED.has(state);
}

/**
 * One instance, re-read whenever the change feed says it changed; `gone` once deleted.
 * @param {import("./events.js").ChangeFeed} feed
 * @param {string} id
 */
export function useInstance(feed, id) {
  const [inst, setInst] = useState(/** @type {Instance | null} */ (null));
  const [error, setError] = useState(/** @type {string | null} */ (null));
  const [gone, setGone] = useState(false);
  useEffect(() => {
    let alive = true;
    async function load() {
      try {
        const i = await call("GET", `/v1/instances/${encodeURIComponent(id)}`);
        if (alive) {
          setInst(i);
          setError(null);
        }
      } catch (err) {
        if (!alive) return;
        if (err && /** @type {any} */ (err).status === 404) setGone(true);
        else setError(err instanceof Error ? err.message : String(err));
      }
    }
    load();
    const off = feed.onEvent((e) => {
      if (e.type === "instance" && e.resource_id === id) load();
    });
    const offReload = feed.onReload(load);
    return () => {
      alive = false;
      off();
      offReload();
    };
  }, [feed, id]);
  return { inst, setInst, error, gone };
}

/** @param {number} bytes */
export function mib(bytes) {
  return Math.round(bytes / 2 ** 20);
}
