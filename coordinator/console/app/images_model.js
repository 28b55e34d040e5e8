// What the Images screen reads: the images the caller may see (kept current from the change
// feed), the recycle bin, the transfers' progress from the operations' events (bytes, rate,
// ETA), and the filters of the view (tab, visibility, tag, quick search, column filters).
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { call, listAll } from "./api.js";
import { t } from "./i18n.js";
import { useLiveList } from "./live_list.js";

/**
 * @typedef {import("../types/api").components["schemas"]["Image"]} Image
 * @typedef {import("../types/api").components["schemas"]["Operation"]} Operation
 * @typedef {"all" | "base" | "custom" | "iso" | "bin"} Tab
 * @typedef {{tab: Tab, vis: string, tag: string, q: string, name: string, os: string,
 *   status: string}} Filters
 * @typedef {{bytes: number, total: number | null, status: string, error: string | null,
 *   rate: number | null, eta: number | null}} Transfer
 */

export const TABS = /** @type {const} */ (["all", "base", "custom", "iso", "bin"]);
export const VISIBILITIES = /** @type {const} */ (["featured", "public", "private"]);
export const STATUSES = /** @type {const} */ (["making", "creating", "importing", "import_failed", "available", "deleting"]);
export const OS_TYPES = /** @type {const} */ (["linux", "windows"]);
export const ARCHITECTURES = /** @type {const} */ (["x86_64", "aarch64"]);

/** Statuses in which an image is being filled, so its operation's progress is shown. */
const FILLING = new Set(["making", "creating", "importing"]);

/** @param {Image} image */
export function isFilling(image) {
  return FILLING.has(image.status) && !!image.operation_id;
}

/**
 * The view's filters from the URL; a tenant's default visibility is `featured` (the seed:
 * non-administrators open on the featured list), an admin's all.
 * @param {URLSearchParams} params @param {boolean} isAdmin
 * @returns {Filters}
 */
export function filtersOf(params, isAdmin) {
  const tab = /** @type {Tab} */ (params.get("tab") || "all");
  return {
    tab: TABS.includes(/** @type {any} */ (tab)) ? tab : "all",
    vis: params.get("vis") ?? (isAdmin ? "" : "featured"),
    tag: params.get("tag") || "",
    q: params.get("q") || "",
    name: params.get("name") || "",
    os: params.get("os") || "",
    status: params.get("status") || "",
  };
}

/**
 * The URL's parameters for `f`; the visibility is written even when empty for a tenant, so
 * "all" survives a reload rather than falling back to featured.
 * @param {Filters} f @param {boolean} isAdmin
 * @returns {Record<string, string>}
 */
export function paramsOf(f, isAdmin) {
  return {
    tab: f.tab === "all" ? "" : f.tab,
    vis: !isAdmin && f.vis === "" ? "all" : f.vis,
    tag: f.tag,
    q: f.q,
    name: f.name,
    os: f.os,
    status: f.status,
  };
}

/** The searchable text of an image: name, note, status (code and words), id, platform, tags. */
/** @param {Image} i */
function hay(i) {
  return [i.name, i.note, i.status, t(/** @type {any} */ (`images.status.${i.status}`)), i.id, i.platform || "",
    i.version || "", ...i.tags].join("\n").toLowerCase();
}

/**
 * The images `f` shows, newest first.
 * @param {Image[]} images @param {Filters} f
 */
export function filterImages(images, f) {
  const q = f.q.trim().toLowerCase();
  const name = f.name.trim().toLowerCase();
  const vis = f.vis === "all" ? "" : f.vis;
  return images
    .filter((i) => {
      if (f.tab === "base" && !(i.kind === "base" && i.type === "image")) return false;
      if (f.tab === "custom" && !(i.kind === "custom" && i.type === "image")) return false;
      if (f.tab === "iso" && i.type !== "iso") return false;
      if (vis && i.visibility !== vis) return false;
      if (f.tag && !i.tags.includes(f.tag)) return false;
      if (name && !i.name.toLowerCase().includes(name)) return false;
      if (f.os && i.os_type !== f.os) return false;
      if (f.status && i.status !== f.status) return false;
      return !q || hay(i).includes(q);
    })
    .sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : a.id.localeCompare(b.id)));
}

/** Every tag of `images`, sorted. @param {Image[]} images */
export function allTags(images) {
  return [...new Set(images.flatMap((i) => i.tags))].sort();
}

/**
 * @param {import("./events.js").ChangeFeed} feed
 * @returns {{items: Image[], loaded: boolean, error: string | null, put: (i: Image) => void,
 *   drop: (id: string) => void, reload: () => void}}
 */
export function useImages(feed) {
  return useLiveList(feed, { path: "/v1/images", type: "image" });
}

/**
 * The recycle bin while `active`: read once, then again after image events (an image
 * deleted, restored or destroyed); never on a timer.
 * @param {import("./events.js").ChangeFeed} feed @param {boolean} active
 */
export function useRecycleBin(feed, active) {
  const [items, setItems] = useState(/** @type {Image[]} */ ([]));
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState(/** @type {string | null} */ (null));
  const timer = useRef(/** @type {any} */ (null));
  const load = useMemo(() => async () => {
    try {
      setItems(await listAll("/v1/recycle-bin"));
      setError(null);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
    setLoaded(true);
  }, []);
  useEffect(() => {
    if (!active) return undefined;
    load();
    const soon = () => {
      clearTimeout(timer.current);
      timer.current = setTimeout(load, 150);
    };
    const off = feed.onEvent((e) => {
      if (e.type === "image") soon();
    });
    const offReload = feed.onReload(load);
    return () => {
      off();
      offReload();
      clearTimeout(timer.current);
    };
  }, [feed, active]);
  return { items, loaded, error, reload: load };
}

/** Samples older than this leave the rate's window. */
const RATE_WINDOW_MS = 5000;

/**
 * The operations' transfers, by operation id: bytes moved, of how many, rate and ETA, from
 * the operation events' `progress_bytes` / `total_bytes` (each operation read once when a
 * row first asks for it).
 * @param {import("./events.js").ChangeFeed} feed
 * @returns {{transfers: Map<string, Transfer>, track: (id: string) => void}}
 */
export function useTransfers(feed) {
  const state = useRef(/** @type {Map<string, Transfer & {samples: [number, number][]}>} */ (new Map()));
  const asked = useRef(/** @type {Set<string>} */ (new Set()));
  const [version, setVersion] = useState(0);
  const bump = () => setVersion((v) => v + 1);

  /** @param {string} id @param {{progress_bytes?: number, total_bytes?: number | null, status?: string, error?: string | null}} d */
  function update(id, d) {
    const now = performance.now();
    const old = state.current.get(id) || { bytes: 0, total: null, status: "running", error: null, rate: null, eta: null, samples: [] };
    const next = { ...old };
    if (typeof d.progress_bytes === "number") {
      next.bytes = d.progress_bytes;
      next.samples = [...old.samples, /** @type {[number, number]} */ ([now, d.progress_bytes])]
        .filter(([at], i, all) => i === all.length - 1 || now - at <= RATE_WINDOW_MS);
    }
    if (d.total_bytes !== undefined) next.total = d.total_bytes ?? null;
    if (d.status) next.status = d.status;
    if (d.error !== undefined) next.error = d.error ?? null;
    const s = next.samples;
    if (s.length >= 2 && s[s.length - 1][0] > s[0][0]) {
      const rate = ((s[s.length - 1][1] - s[0][1]) * 1000) / (s[s.length - 1][0] - s[0][0]);
      next.rate = rate > 0 ? rate : null;
    }
    next.eta = next.rate && next.total !== null ? Math.max(0, (next.total - next.bytes) / next.rate) : null;
    if (next.status !== "running") next.eta = null;
    state.current.set(id, next);
    bump();
  }

  useEffect(() => feed.onEvent((e) => {
    if (e.type !== "operation" || !e.data) return;
    if (e.data.deleted) {
      state.current.delete(e.resource_id);
      bump();
      return;
    }
    if ("progress_bytes" in e.data || "status" in e.data) update(e.resource_id, e.data);
  }), [feed]);

  /** @param {string} id */
  function track(id) {
    if (asked.current.has(id)) return;
    asked.current.add(id);
    call("GET", `/v1/operations/${encodeURIComponent(id)}`).then(
      (/** @type {Operation} */ op) => {
        // An event may have come first: only what it has not said yet is taken.
        const seen = state.current.get(id);
        update(id, seen ? { status: op.status } : op);
      },
      () => {},
    );
  }

  const transfers = useMemo(() => new Map(state.current), [version]);
  return { transfers, track };
}

/** Bytes in binary units, as a catalogue string. @param {number | null | undefined} n */
export function bytes(n) {
  if (n === null || n === undefined) return "";
  const units = /** @type {const} */ (["b", "kib", "mib", "gib", "tib"]);
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  const shown = u === 0 || v >= 100 ? v.toFixed(0) : v.toFixed(1);
  return t(/** @type {any} */ (`images.unit.${units[u]}`), { n: shown });
}

/** A duration in whole seconds as minutes and seconds. @param {number} s */
export function duration(s) {
  const total = Math.round(s);
  if (total < 60) return t("images.eta.s", { s: total });
  if (total < 3600) return t("images.eta.ms", { m: Math.floor(total / 60), s: total % 60 });
  return t("images.eta.hm", { h: Math.floor(total / 3600), m: Math.floor((total % 3600) / 60) });
}

/**
 * What a transfer reads as, in parts shown side by side: "3.1 MiB of 8.0 MiB",
 * "1.2 MiB/s", "4 s left".
 * @param {{bytes: number, total: number | null, rate: number | null, eta: number | null}} tr
 * @returns {{bytes: string, rate: string, eta: string}}
 */
export function progressParts(tr) {
  const done = bytes(tr.bytes);
  return {
    bytes: tr.total !== null ? t("images.progress.of", { done, total: bytes(tr.total) }) : done,
    rate: tr.rate !== null ? t("images.progress.rate", { rate: bytes(tr.rate) }) : "",
    eta: tr.eta !== null ? t("images.progress.eta", { eta: duration(tr.eta) }) : "",
  };
}
