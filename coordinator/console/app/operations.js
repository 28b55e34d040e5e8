// The operations drawer: the region's recent operations with their live progress. The top
// bar's button (admins) says how many are running and opens the drawer; the admin screen's
// operations tab shows the same list with filters.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { html } from "./html.js";
import { t } from "./i18n.js";
import { call } from "./api.js";
import { dateTime, shortTime } from "./format.js";
import { Dialog } from "./ui/dialog.js";

/** @typedef {import("../types/api").components["schemas"]["Operation"]} Operation */

/** The newest this many: an operations list grows without end, the drawer shows the recent. */
const RECENT = 100;

export const KINDS = [
  "image_import", "image_upload", "image_copy", "image_export", "instance_create", "instance_start",
  "instance_stop", "instance_reboot", "instance_delete", "instance_migrate", "host_drain",
  "baremetal_prepare", "baremetal_power",
];

/**
 * The newest operations matching `filters` (`kind`, `status`), kept current from the change
 * feed: each operation event re-reads that one operation.
 * @param {import("./events.js").ChangeFeed} feed
 * @param {{kind?: string, status?: string}} [filters]
 * @returns {{items: Operation[], loaded: boolean, error: string | null}}
 */
export function useOperations(feed, filters = {}) {
  const byId = useRef(/** @type {Map<string, Operation>} */ (new Map()));
  const [version, setVersion] = useState(0);
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState(/** @type {string | null} */ (null));
  const kind = filters.kind || "";
  const status = filters.status || "";

  useEffect(() => {
    let live = true;
    /** @param {Operation} op */
    const fits = (op) => (!kind || op.kind === kind) && (!status || op.status === status);
    /** @param {Operation} op */
    function put(op) {
      if (fits(op)) byId.current.set(op.id, op);
      else byId.current.delete(op.id);
      setVersion((v) => v + 1);
    }
    async function load() {
      const q = new URLSearchParams({ limit: String(RECENT) });
      if (kind) q.set("kind", kind);
      if (status) q.set("status", status);
      try {
        /** @type {{items: Operation[]}} */
        const page = await call("GET", `/v1/operations?${q}`);
        if (!live) return;
        byId.current = new Map(page.items.map((op) => [op.id, op]));
        setError(null);
      } catch (err) {
        if (live) setError(err instanceof Error ? err.message : String(err));
      }
      if (live) {
        setLoaded(true);
        setVersion((v) => v + 1);
      }
    }
    const offEvent = feed.onEvent((e) => {
      if (e.type !== "operation") return;
      call("GET", `/v1/operations/${encodeURIComponent(e.resource_id)}`).then((op) => live && put(op), () => {});
    });
    const offReload = feed.onReload(load);
    setLoaded(false);
    load();
    return () => {
      live = false;
      offEvent();
      offReload();
    };
  }, [feed, kind, status]);

  const items = useMemo(
    () => [...byId.current.values()].sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0)),
    [version],
  );
  return { items, loaded, error };
}

/** How far an operation is, from whichever pair has a total: [done, total, text] or null. */
/** @param {Operation} op @returns {{pct: number, text: string} | null} */
export function progressOf(op) {
  if (op.total_bytes) {
    const pct = Math.min(100, Math.round((op.progress_bytes / op.total_bytes) * 100));
    return { pct, text: t("operations.bytes", { done: mib(op.progress_bytes), total: mib(op.total_bytes), pct }) };
  }
  if (op.items_total != null && op.items_total > 0) {
    const done = op.items_done || 0;
    const pct = Math.min(100, Math.round((done / op.items_total) * 100));
    return { pct, text: t("operations.items", { done, total: op.items_total, pct }) };
  }
  if (op.status !== "running") return { pct: 100, text: t("operations.done") };
  return null;
}

/** @param {number} bytes */
function mib(bytes) {
  return (bytes / 2 ** 20).toFixed(1);
}

/** One operation: kind, target, status, progress, when; its steps on demand. */
/** @param {{op: Operation}} props */
function OperationRow({ op }) {
  const [steps, setSteps] = useState(/** @type {Operation["steps"] | null} */ (null));
  const [open, setOpen] = useState(false);
  const p = progressOf(op);
  useEffect(() => {
    if (!open) return;
    call("GET", `/v1/operations/${encodeURIComponent(op.id)}`).then((full) => setSteps(full.steps || []), () => setSteps([]));
  }, [open, op.updated_at]);
  const kindKey = KINDS.includes(op.kind) ? `operations.kind.${op.kind}` : "";
  return html`
    <li class="op" data-op-id=${op.id} data-status=${op.status} data-kind=${op.kind}>
      <div class="op-head">
        <span class="op-kind">${kindKey ? t(/** @type {any} */ (kindKey)) : html`<span data-raw>${op.kind}</span>`}</span>
        <span class=${`badge op-${op.status}`}>${t(/** @type {any} */ (`operations.status.${op.status}`))}</span>
      </div>
      <div class="op-target"><span class="mono" data-raw>${op.target_id}</span>
        <span class="op-when" data-raw title=${dateTime(op.created_at)}>${shortTime(op.created_at)}</span></div>
      ${p && html`
        <div class="op-progress">
          <div class="usage-track" role="progressbar" aria-label=${t("operations.progress")} aria-valuemin="0" aria-valuemax="100" aria-valuenow=${p.pct}>
            <div class=${`usage-fill ${op.status === "failed" ? "high" : "low"}`} style=${{ width: `${p.pct}%` }}></div>
          </div>
          <span class="usage-text" data-testid="op-progress">${p.text}</span>
        </div>`}
      ${op.error && html`<p class="error op-error" data-raw>${op.error}</p>`}
      <button type="button" class="link" aria-expanded=${open ? "true" : "false"} onClick=${() => setOpen(!open)}>
        ${open ? t("operations.hide_steps") : t("operations.show_steps")}
      </button>
      ${open && html`
        <ol class="op-steps">
          ${steps === null && html`<li>${t("operations.loading")}</li>`}
          ${steps && steps.length === 0 && html`<li>${t("operations.no_steps")}</li>`}
          ${(steps || []).map((s) => html`<li><span class="op-when" data-raw>${shortTime(s.at)}</span> <span data-raw>${s.message}</span></li>`)}
        </ol>`}
    </li>`;
}

/**
 * The list of operations with live progress (the drawer and the admin's tab).
 * @param {{ops: {items: Operation[], loaded: boolean, error: string | null}}} props
 */
export function OperationList({ ops }) {
  return html`
    <div class="op-list">
      ${ops.error && html`<p class="error" role="alert" data-raw>${ops.error}</p>`}
      ${ops.loaded && ops.items.length === 0 && html`<p class="empty">${t("operations.empty")}</p>`}
      <ul class="ops" aria-label=${t("operations.title")}>
        ${ops.items.map((op) => html`<${OperationRow} key=${op.id} op=${op} />`)}
      </ul>
    </div>`;
}

/** @param {{feed: import("./events.js").ChangeFeed}} props */
export function OperationsButton({ feed }) {
  const ops = useOperations(feed);
  const [open, setOpen] = useState(false);
  const running = ops.items.filter((op) => op.status === "running").length;
  return html`
    <button type="button" class="ops-button" data-testid="operations-button" aria-haspopup="dialog"
      aria-expanded=${open ? "true" : "false"} onClick=${() => setOpen(true)}>
      ${t("operations.button")}
      ${running > 0 && html` <span class="ops-running" data-testid="operations-running" data-raw>${running}</span>`}
    </button>
    ${open && html`<${Drawer} ops=${ops} onClose=${() => setOpen(false)} />`}`;
}

/**
 * The drawer: the kit's modal dialog along the right edge (Esc or the close button close it).
 * @param {{ops: {items: Operation[], loaded: boolean, error: string | null}, onClose: () => void}} props
 */
function Drawer({ ops, onClose }) {
  return html`
    <${Dialog} title=${t("operations.title")} onClose=${onClose} testid="operations-drawer" className="ops-drawer">
      <p class="hint">${t("operations.hint")}</p>
      <${OperationList} ops=${ops} />
      <a href="#/admin?tab=operations" onClick=${onClose}>${t("operations.all")}</a>
    <//>`;
}
