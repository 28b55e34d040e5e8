// Host actions on one or many hosts: a confirmation naming what happens, then every host's
// own result, and the failed ones can be retried.
import { html } from "./html.js";
import { call } from "./api.js";
import { t } from "./i18n.js";

/** @typedef {import("./host_row.js").HostAction} HostAction */
/** @typedef {{id: string, ok: boolean, message: string}} HostResult */
/** @typedef {{action: HostAction, ids: string[], results: HostResult[], running: boolean}} Batch */

/** @type {Record<HostAction, (id: string) => string>} */
const PATHS = {
  lock: (id) => `/v1/hosts/${encodeURIComponent(id)}/lock`,
  unlock: (id) => `/v1/hosts/${encodeURIComponent(id)}/unlock`,
  enter: (id) => `/v1/hosts/${encodeURIComponent(id)}/maintenance/enter`,
  exit: (id) => `/v1/hosts/${encodeURIComponent(id)}/maintenance/exit`,
};

const PARALLEL = 8;

/**
 * Runs `action` on every host of `ids`, at most PARALLEL at once, reporting each result.
 * @param {HostAction} action
 * @param {string[]} ids
 * @param {(r: HostResult, answer: any) => void} onResult
 */
export async function runBatch(action, ids, onResult) {
  let next = 0;
  async function worker() {
    while (next < ids.length) {
      const id = ids[next++];
      try {
        const answer = await call("POST", PATHS[action](id));
        onResult({ id, ok: true, message: "" }, answer);
      } catch (err) {
        onResult({ id, ok: false, message: err instanceof Error ? err.message : String(err) }, null);
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(PARALLEL, ids.length) }, worker));
}

/**
 * @param {{action: HostAction, count: number, onConfirm: () => void, onCancel: () => void}} props
 */
export function ConfirmBar({ action, count, onConfirm, onCancel }) {
  return html`
    <div class="confirm" role="alertdialog" aria-labelledby="confirm-text">
      <p id="confirm-text">${t(`confirm.${action}`, { n: count })}</p>
      <button type="button" class="primary" data-confirm onClick=${onConfirm}>${t("confirm.yes")}</button>
      <button type="button" onClick=${onCancel}>${t("confirm.no")}</button>
    </div>`;
}

/** @param {{batch: Batch, onRetry: (ids: string[]) => void, onClose: () => void}} props */
export function BatchResults({ batch, onRetry, onClose }) {
  const failed = batch.results.filter((r) => !r.ok);
  const ok = batch.results.length - failed.length;
  const action = t(`action.${batch.action}`);
  return html`
    <section class="results" aria-live="polite" data-testid="batch-results">
      <h2>${batch.running
        ? t("result.running", { action, done: batch.results.length, n: batch.ids.length })
        : t("result.title", { action, ok, failed: failed.length })}</h2>
      <ul>
        ${batch.results.map((r) => html`
          <li class=${r.ok ? "ok" : "failed"} data-result-host=${r.id} data-ok=${r.ok ? "1" : "0"}>
            <span class="mono" data-raw>${r.id}</span>
            ${r.ok ? html`<span>${t("result.ok")}</span>` : html`<span data-raw>${r.message}</span>`}
          </li>`)}
      </ul>
      ${!batch.running && html`
        <div class="results-actions">
          ${failed.length > 0 && html`<button type="button" class="primary" onClick=${() => onRetry(failed.map((r) => r.id))}>${t("result.retry")}</button>`}
          <button type="button" onClick=${onClose}>${t("result.close")}</button>
        </div>`}
    </section>`;
}
