// One image in the list: the seed's columns (name and id, type, OS, visibility, status with
// the transfer's progress while it fills, size, tags, owner, created) and its actions.
import { html } from "./html.js";
import { t } from "./i18n.js";
import { shortTime } from "./format.js";
import { bytes, isFilling } from "./images_model.js";
import { Progress } from "./image_progress.js";

/** @typedef {import("./images_model.js").Image} Image */
/** @typedef {"edit" | "download" | "copy" | "delete"} ImageAction */

/** @param {Image} i */
export function osText(i) {
  return [i.platform, i.version, i.architecture].filter(Boolean).join(" ");
}

/**
 * @param {{image: Image, isAdmin: boolean, tenantId: string | null | undefined,
 *   transfer: import("./images_model.js").Transfer | undefined,
 *   onAction: (a: ImageAction, image: Image) => void, onTag: (tag: string) => void}} props
 */
export function ImageRow({ image: i, isAdmin, tenantId, transfer, onAction, onTag }) {
  const mine = isAdmin || (i.kind === "custom" && i.owner_tenant_id === tenantId);
  /** @type {ImageAction[]} */
  const actions = [];
  if (mine) actions.push("edit");
  if (i.status === "available") actions.push("download");
  if (isAdmin && i.kind === "custom" && i.status === "available") actions.push("copy");
  if (mine) actions.push("delete");
  const filling = isFilling(i);
  return html`
    <tr class="image-row" data-image-id=${i.id} data-status=${i.status} data-visibility=${i.visibility}>
      <td data-label=${t("images.col.name")}>
        <div class="c-id">
          <span class="image-name" data-raw>${i.name}</span>
          <span class="sub mono" data-raw>${i.id}</span>
          ${i.note && html`<span class="sub" data-raw>${i.note}</span>`}
        </div>
      </td>
      <td data-label=${t("images.col.type")}>
        <span>${t(/** @type {any} */ (`images.kind.${i.kind}`))}</span>
        <span class="sub">${t(/** @type {any} */ (`images.type.${i.type}`))}</span>
      </td>
      <td data-label=${t("images.col.os")}>
        ${i.os_type && html`<span>${t(/** @type {any} */ (`images.os.${i.os_type}`))}</span>`}
        <span class="sub" data-raw>${osText(i)}</span>
      </td>
      <td data-label=${t("images.col.visibility")}>
        <span class=${`badge vis-${i.visibility}`}>${t(/** @type {any} */ (`images.vis.${i.visibility}`))}</span>
      </td>
      <td data-label=${t("images.col.status")} class="c-status">
        <span class=${`badge status-${i.status}`}>${t(/** @type {any} */ (`images.status.${i.status}`))}</span>
        ${filling && transfer && html`<${Progress} ...${transfer} label=${t("images.progress.label", { name: i.name })} />`}
        ${i.status === "import_failed" && i.failure_reason && html`<span class="sub error" data-raw>${i.failure_reason}</span>`}
      </td>
      <td class="c-nowrap" data-label=${t("images.col.size")}><span data-raw>${i.size_bytes !== null && i.size_bytes !== undefined ? bytes(i.size_bytes) : ""}</span></td>
      <td data-label=${t("images.col.tags")} class="c-tags"><span class="tag-list">
        ${i.tags.map((tag) => html`
          <button type="button" class="tag" data-tag=${tag} aria-label=${t("images.tag.filter", { tag })}
            onClick=${() => onTag(tag)}><span data-raw>${tag}</span></button>`)}
      </span></td>
      ${isAdmin && html`<td data-label=${t("images.col.owner")}><span data-raw>${i.owner_email || ""}</span></td>`}
      <td class="c-nowrap" data-label=${t("images.col.created")}><span data-raw>${shortTime(i.created_at)}</span></td>
      <td data-label=${t("images.col.actions")} class="c-img-actions">
        ${actions.map((a) => html`
          <button type="button" class="link" data-action=${a} onClick=${() => onAction(a, i)}>${t(/** @type {any} */ (`images.action.${a}`))}</button>`)}
      </td>
    </tr>`;
}
