// A host's USB devices, GPUs and vGPUs (GET /v1/hosts/{id}/usb, /gpus, /vgpus): read when shown,
// after each action here, and again when an instance that holds one of them changes (the feed
// has no device events; a holder's change is what frees or takes a device).
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { call } from "./api.js";

/**
 * @typedef {import("../types/api").components["schemas"]["UsbDevice"]} UsbDevice
 * @typedef {import("../types/api").components["schemas"]["Gpu"]} Gpu
 * @typedef {import("../types/api").components["schemas"]["Vgpu"]} Vgpu
 * @typedef {{usb: UsbDevice[], gpus: Gpu[], vgpus: Vgpu[]}} Devices
 */

/**
 * @param {import("./events.js").ChangeFeed} feed
 * @param {string} id
 * @param {("usb" | "gpus" | "vgpus")[]} kinds which lists to read
 */
export function useHostDevices(feed, id, kinds) {
  const [devices, setDevices] = useState(/** @type {Devices} */ ({ usb: [], gpus: [], vgpus: [] }));
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState(/** @type {string | null} */ (null));
  const holders = useRef(new Set(/** @type {string[]} */ ([])));
  const key = kinds.join(",");
  const ops = useMemo(() => {
    let alive = true;
    async function load() {
      try {
        const base = `/v1/hosts/${encodeURIComponent(id)}`;
        const got = await Promise.all(kinds.map((k) => call("GET", `${base}/${k}`)));
        if (!alive) return;
        /** @type {Devices} */
        const next = { usb: [], gpus: [], vgpus: [] };
        kinds.forEach((k, i) => {
          next[k] = got[i].items || [];
        });
        const held = new Set();
        for (const d of [...next.usb, ...next.gpus, ...next.vgpus]) if (d.instance_id) held.add(d.instance_id);
        holders.current = held;
        setDevices(next);
        setError(null);
      } catch (err) {
        if (alive) setError(err instanceof Error ? err.message : String(err));
      }
      if (alive) setLoaded(true);
    }
    /** @param {import("./events.js").ChangeEvent} e */
    function onEvent(e) {
      if (e.type === "instance" && holders.current.has(e.resource_id)) load();
    }
    return { load, onEvent, stop: () => { alive = false; } };
  }, [id, key]);
  useEffect(() => {
    const offEvent = feed.onEvent(ops.onEvent);
    const offReload = feed.onReload(ops.load);
    ops.load();
    return () => {
      ops.stop();
      offEvent();
      offReload();
    };
  }, [feed, ops]);
  return { ...devices, loaded, error, reload: ops.load };
}
