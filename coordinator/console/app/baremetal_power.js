// Power actions on a bare-metal server: a menu of the five, a confirmation (typed, with the
// server's name, for force off and power cycle, which cut the power under the OS), then the
// action's operation followed on the change feed to its end.
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { call } from "./api.js";
import { t } from "./i18n.js";
import { Dialog, TypedConfirm } from "./ui/dialog.js";

/** @typedef {import("../types/api").components["schemas"]["Baremetal"]} Baremetal */
/** @typedef {import("../types/api").components["schemas"]["PowerAction"]} PowerAction */
/**
 * @typedef {{server: {id: string, name: string}, action: PowerAction, status: "running" |
 *   "succeeded" | "failed" | "refused", error?: string, operation?: string}} PowerRun
 */

/** @type {PowerAction[]} */
export const POWER_ACTIONS = ["on", "off", "reboot", "force_off", "cycle"];
/** The ones that cut the power without the OS: confirmed by typing the server's name. */
const HARD = new Set(["force_off", "cycle"]);

/** @param {string} action */
export const actionLabel = (action) => t(/** @type {any} */ (`bm.action.${action}`));

/**
 * The power menu of one server (a disclosure: keyboard reachable, no script to open it).
 * @param {{server: Baremetal, onPick: (action: PowerAction) => void}} props
 */
export function PowerMenu({ server, onPick }) {
  const disabled = server.state !== "running";
  /** @param {Event} e @param {PowerAction} a */
  function pick(e, a) {
    const d = /** @type {HTMLElement} */ (e.currentTarget).closest("details");
    if (d) d.open = false;
    onPick(a);
  }
  if (disabled) return html`<button type="button" class="link" disabled>${t("bm.power")}</button>`;
  return html`
    <details class="bm-menu" data-power-menu=${server.id}>
      <summary class="link" aria-label=${t("bm.power_menu", { name: server.name })}>${t("bm.power")}</summary>
      <div class="bm-menu-items">
        ${POWER_ACTIONS.map((a) => html`
          <button type="button" class="link" data-power=${a} onClick=${(/** @type {Event} */ e) => pick(e, a)}>${actionLabel(a)}</button>`)}
      </div>
    </details>`;
}

/**
 * Asks for the action (typed for the hard ones), then starts it; `onDone` gets the run (null
 * when cancelled).
 * @param {{server: {id: string, name: string}, action: PowerAction, onDone: (run: PowerRun | null) => void}} props
 */
export function PowerConfirm({ server, action, onDone }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(/** @type {string | null} */ (null));
  const label = actionLabel(action);
  async function go() {
    setBusy(true);
    setError(null);
    try {
      /** @type {import("../types/api").components["schemas"]["Operation"]} */
      const op = await call("POST", `/v1/baremetal/${encodeURIComponent(server.id)}/power`, { action });
      onDone({ server, action, status: "running", operation: op.id });
    } catch (err) {
      onDone({ server, action, status: "refused", error: err instanceof Error ? err.message : String(err) });
    } finally {
      setBusy(false);
    }
  }
  const text = t(/** @type {any} */ (`bm.confirm.${action}`), { name: server.name });
  const title = t("bm.confirm.title", { action: label, name: server.name });
  if (HARD.has(action)) {
    return html`<${TypedConfirm} title=${title} text=${text} expect=${server.name} action=${label}
      busy=${busy} error=${error} onConfirm=${go} onCancel=${() => onDone(null)} />`;
  }
  return html`
    <${Dialog} title=${title} onClose=${() => onDone(null)} testid="power-confirm">
      <p>${text}</p>
      <div class="form-actions">
        <button type="button" class="primary" data-confirm disabled=${busy} onClick=${go}>${label}</button>
        <button type="button" onClick=${() => onDone(null)}>${t("ui.cancel")}</button>
      </div>
    <//>`;
}

/**
 * A power action's state, kept current from its operation's events.
 * @param {{run: PowerRun, feed: import("./events.js").ChangeFeed, onClose: () => void}} props
 */
export function PowerStatus({ run, feed, onClose }) {
  const [now, setNow] = useState(run);
  useEffect(() => {
    setNow(run);
    if (run.status !== "running" || !run.operation) return undefined;
    const opId = run.operation;
    let gone = false;
    async function read() {
      try {
        /** @type {import("../types/api").components["schemas"]["Operation"]} */
        const op = await call("GET", `/v1/operations/${encodeURIComponent(opId)}`);
        if (gone || op.status === "running") return;
        setNow({ ...run, status: op.status === "succeeded" ? "succeeded" : "failed", error: op.error || "" });
      } catch {
        // The next event reads it again.
      }
    }
    const off = feed.onEvent((e) => {
      if (e.type === "operation" && e.resource_id === opId) read();
    });
    read();
    return () => {
      gone = true;
      off();
    };
  }, [run, feed]);
  const vars = { action: actionLabel(now.action), name: now.server.name, error: now.error || "" };
  const text = t(/** @type {any} */ (`bm.power.${now.status}`), vars);
  return html`
    <div class=${`bm-status is-${now.status}`} role="status" data-power-status=${now.status} data-power-action=${now.action}>
      <span>${text}</span>
      ${now.status !== "running" && html`<button type="button" class="link" onClick=${onClose}>${t("bm.dismiss")}</button>`}
    </div>`;
}
