// The recycle bin (回收站): deleted custom images, the last deleted first; restore brings one
// back to the status it had, destroy removes its content for good (typed confirmation).
import { useState } from "preact/hooks";
import { html } from "./html.js";
import { t } from "./i18n.js";
import { call } from "./api.js";
import { shortTime } from "./format.js";
import { TypedConfirm } from "./ui/dialog.js";
import { bytes } from "./images_model.js";
import { osText } from "./image_row.js";

/** @typedef {import("./images_model.js").Image} Image */

/**
 * @param {{items: Image[], loaded: boolean, error: string | null, isAdmin: boolean,
 *   q: string, reload: () => void}} props
 */
export function RecycleBin({ items, loaded, error, isAdmin, q, reload }) {
  const [destroying, setDestroying] = useState(/** @type {Image | null} */ (null));
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState(/** @type {string | null} */ (null));
  const [restoreError, setRestoreError] = useState(/** @type {string | null} */ (null));
  const query = q.trim().toLowerCase();
  const shown = items.filter((i) => !query || `${i.name}\n${i.id}\n${i.note}`.toLowerCase().includes(query));

  /** @param {Image} image */
  async function restore(image) {
    setRestoreError(null);
    try {
      await call("POST", `/v1/recycle-bin/${encodeURIComponent(image.id)}/restore`);
      reload();
    } catch (err) {
      setRestoreError(err instanceof Error ? err.message : String(err));
    }
  }

  async function destroy() {
    if (!destroying) return;
    setBusy(true);
    setFailure(null);
    try {
      await call("DELETE", `/v1/recycle-bin/${encodeURIComponent(destroying.id)}`);
      setDestroying(null);
      reload();
    } catch (err) {
      setFailure(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  return html`
    <div class="image-bin" data-testid="recycle-bin">
      <p class="hint">${t("images.bin.hint")}</p>
      ${error && html`<p class="error" role="alert" data-raw>${error}</p>`}
      ${restoreError && html`<p class="error" role="alert" data-raw>${restoreError}</p>`}
      <div class="table-scroll">
        <table class="images-table">
          <caption class="visually-hidden">${t("images.tab.bin")}</caption>
          <thead>
            <tr>
              <th scope="col">${t("images.col.name")}</th>
              <th scope="col">${t("images.col.os")}</th>
              <th scope="col">${t("images.col.status")}</th>
              <th scope="col">${t("images.col.size")}</th>
              ${isAdmin && html`<th scope="col">${t("images.col.owner")}</th>`}
              <th scope="col">${t("images.col.deleted")}</th>
              <th scope="col">${t("images.col.actions")}</th>
            </tr>
          </thead>
          <tbody>
            ${shown.map((i) => html`
              <tr class="image-row" data-bin-id=${i.id}>
                <td data-label=${t("images.col.name")}>
                  <div class="c-id">
                    <span class="image-name" data-raw>${i.name}</span>
                    <span class="sub mono" data-raw>${i.id}</span>
                  </div>
                </td>
                <td data-label=${t("images.col.os")}><span data-raw>${osText(i)}</span></td>
                <td data-label=${t("images.col.status")}>
                  <span class=${`badge status-${i.status}`}>${t(/** @type {any} */ (`images.status.${i.status}`))}</span>
                </td>
                <td class="c-nowrap" data-label=${t("images.col.size")}><span data-raw>${i.size_bytes ? bytes(i.size_bytes) : ""}</span></td>
                ${isAdmin && html`<td data-label=${t("images.col.owner")}><span data-raw>${i.owner_email || ""}</span></td>`}
                <td class="c-nowrap" data-label=${t("images.col.deleted")}><span data-raw>${shortTime(i.deleted_at)}</span></td>
                <td data-label=${t("images.col.actions")} class="c-img-actions">
                  <button type="button" class="link" data-action="restore" onClick=${() => restore(i)}>${t("images.bin.restore")}</button>
                  <button type="button" class="link danger-link" data-action="destroy" onClick=${() => {
                    setFailure(null);
                    setDestroying(i);
                  }}>${t("images.bin.destroy")}</button>
                </td>
              </tr>`)}
          </tbody>
        </table>
        ${loaded && shown.length === 0 && html`<p class="empty">${t("images.bin.empty")}</p>`}
      </div>
      ${destroying && html`
        <${TypedConfirm} title=${t("images.bin.destroy_title")} text=${t("images.bin.destroy_text", { name: destroying.name })}
          expect=${destroying.id} action=${t("images.bin.destroy")} busy=${busy} error=${failure}
          onConfirm=${destroy} onCancel=${() => setDestroying(null)} />`}
    </div>`;
}
