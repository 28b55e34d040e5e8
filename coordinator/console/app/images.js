// The Images screen (/images), for admins and tenants (镜像): all / base / custom / ISO tabs
// and the recycle bin, featured / public / private, tags, a quick search and column filters,
// every filter in the URL; import from a URL or upload a file, with the transfer's progress
// live from the change feed; edit, download link, copy to base, delete.
import { useEffect, useMemo, useState } from "preact/hooks";
import { html } from "./html.js";
import { t } from "./i18n.js";
import { replaceParams } from "./route.js";
import { Tabs } from "./ui/tabs.js";
import { TABS, VISIBILITIES, OS_TYPES, STATUSES, allTags, filterImages, filtersOf, isFilling, paramsOf,
  useImages, useRecycleBin, useTransfers } from "./images_model.js";
import { ImageRow } from "./image_row.js";
import { RecycleBin } from "./image_bin.js";
import { NewImageDialog } from "./image_form.js";
import { CopyToBaseDialog, DeleteDialog, DownloadDialog, EditDialog } from "./image_dialogs.js";

/** @typedef {import("./images_model.js").Image} Image */
/** @typedef {import("./images_model.js").Filters} Filters */
/**
 * @typedef {{kind: "import" | "upload"} | {kind: import("./image_row.js").ImageAction, image: Image}} Open
 */

/** @param {import("./shell.js").ScreenProps} props */
export function ImagesScreen({ session, feed, route }) {
  const isAdmin = session.role === "admin";
  const [f, setF] = useState(() => filtersOf(route.params, isAdmin));
  const [open, setOpen] = useState(/** @type {Open | null} */ (null));
  const list = useImages(feed);
  const bin = useRecycleBin(feed, f.tab === "bin");
  const { transfers, track } = useTransfers(feed);

  /** @param {Partial<Filters>} change */
  function update(change) {
    const next = { ...f, ...change };
    setF(next);
    replaceParams("/images", paramsOf(next, isAdmin));
  }

  const shown = useMemo(() => filterImages(list.items, f), [list.items, f]);
  const tags = useMemo(() => allTags(list.items), [list.items]);
  useEffect(() => {
    for (const i of list.items) if (isFilling(i) && i.operation_id) track(i.operation_id);
  }, [list.items]);

  /** @param {Image} image */
  function created(image) {
    list.put(image);
    // A new image is private: make sure the view shows it.
    if (f.vis && f.vis !== "all" && f.vis !== image.visibility) update({ vis: "all" });
  }

  const filtered = f.vis !== (isAdmin ? "" : "featured") || f.tag || f.q || f.name || f.os || f.status;
  const visChoices = ["all", ...VISIBILITIES];
  const visValue = f.vis || "all";

  return html`
    <section class="screen images" data-testid="images">
      <div class="screen-head images-head">
        <h1>${t("nav.images")}</h1>
        <label class="visually-hidden" for="images-q">${t("images.search")}</label>
        <input id="images-q" class="search" type="search" placeholder=${t("images.search_hint")}
          value=${f.q} onInput=${(/** @type {any} */ e) => update({ q: e.currentTarget.value })} />
        <span class="count" data-testid="image-count">
          ${f.tab === "bin" ? t("images.bin.count", { n: bin.items.length }) : t("images.count", { shown: shown.length, total: list.items.length })}
        </span>
        <div class="head-actions">
          <button type="button" class="primary" data-open="import" onClick=${() => setOpen({ kind: "import" })}>${t("images.import.open")}</button>
          <button type="button" data-open="upload" onClick=${() => setOpen({ kind: "upload" })}>${t("images.upload.open")}</button>
        </div>
      </div>
      <${Tabs} label=${t("images.tabs")} current=${f.tab} onChange=${(/** @type {any} */ tab) => update({ tab })}
        tabs=${TABS.map((id) => ({ id, label: t(/** @type {any} */ (`images.tab.${id}`)) }))} />
      <div role="tabpanel" aria-labelledby=${`tab-${f.tab}`} class="images-panel">
        ${f.tab === "bin"
          ? html`<${RecycleBin} ...${bin} isAdmin=${isAdmin} q=${f.q} />`
          : html`
            <div class="toolbar image-filters">
              <fieldset class="segmented" data-filter="vis">
                <legend class="visually-hidden">${t("images.filter.vis")}</legend>
                ${visChoices.map((v) => html`
                  <label class=${visValue === v ? "is-on" : ""}>
                    <input type="radio" name="vis" value=${v} checked=${visValue === v}
                      onChange=${() => update({ vis: v === "all" ? "" : v })} />
                    ${t(/** @type {any} */ (`images.vis.${v}`))}
                  </label>`)}
              </fieldset>
              <label class="inline-field">
                <span>${t("images.filter.tag")}</span>
                <select data-filter="tag" value=${f.tag} onInput=${(/** @type {any} */ e) => update({ tag: e.currentTarget.value })}>
                  <option value="">${t("images.filter.any")}</option>
                  ${[...new Set([...tags, ...(f.tag ? [f.tag] : [])])].map((tag) => html`<option value=${tag} data-raw>${tag}</option>`)}
                </select>
              </label>
              ${filtered && html`<button type="button" class="link" data-clear onClick=${() =>
                update({ vis: isAdmin ? "" : "featured", tag: "", q: "", name: "", os: "", status: "" })}>${t("images.filter.clear")}</button>`}
            </div>
            ${list.error && html`<p class="error" role="alert" data-raw>${list.error}</p>`}
            <div class="table-scroll">
              <table class="images-table" data-testid="images-table">
                <caption class="visually-hidden">${t(/** @type {any} */ (`images.tab.${f.tab}`))}</caption>
                <thead>
                  <tr>
                    <th scope="col">${t("images.col.name")}</th>
                    <th scope="col">${t("images.col.type")}</th>
                    <th scope="col">${t("images.col.os")}</th>
                    <th scope="col">${t("images.col.visibility")}</th>
                    <th scope="col">${t("images.col.status")}</th>
                    <th scope="col">${t("images.col.size")}</th>
                    <th scope="col">${t("images.col.tags")}</th>
                    ${isAdmin && html`<th scope="col">${t("images.col.owner")}</th>`}
                    <th scope="col">${t("images.col.created")}</th>
                    <th scope="col">${t("images.col.actions")}</th>
                  </tr>
                  <tr class="column-filters">
                    <td>
                      <input type="search" data-filter="name" aria-label=${t("images.filter.name")} placeholder=${t("images.filter.name")}
                        value=${f.name} onInput=${(/** @type {any} */ e) => update({ name: e.currentTarget.value })} />
                    </td>
                    <td></td>
                    <td>
                      <select data-filter="os" aria-label=${t("images.filter.os")} value=${f.os}
                        onInput=${(/** @type {any} */ e) => update({ os: e.currentTarget.value })}>
                        <option value="">${t("images.filter.any")}</option>
                        ${OS_TYPES.map((o) => html`<option value=${o}>${t(/** @type {any} */ (`images.os.${o}`))}</option>`)}
                      </select>
                    </td>
                    <td></td>
                    <td>
                      <select data-filter="status" aria-label=${t("images.filter.status")} value=${f.status}
                        onInput=${(/** @type {any} */ e) => update({ status: e.currentTarget.value })}>
                        <option value="">${t("images.filter.any")}</option>
                        ${STATUSES.map((s) => html`<option value=${s}>${t(/** @type {any} */ (`images.status.${s}`))}</option>`)}
                      </select>
                    </td>
                    <td></td><td></td>${isAdmin && html`<td></td>`}<td></td><td></td>
                  </tr>
                </thead>
                <tbody>
                  ${shown.map((i) => html`
                    <${ImageRow} key=${i.id} image=${i} isAdmin=${isAdmin} tenantId=${session.tenant_id}
                      transfer=${i.operation_id ? transfers.get(i.operation_id) : undefined}
                      onAction=${(/** @type {any} */ kind, /** @type {Image} */ image) => setOpen({ kind, image })}
                      onTag=${(/** @type {string} */ tag) => update({ tag })} />`)}
                </tbody>
              </table>
              ${list.loaded && shown.length === 0 && html`<p class="empty">${t("images.empty")}</p>`}
            </div>`}
      </div>
      ${open && (open.kind === "import" || open.kind === "upload") && html`
        <${NewImageDialog} mode=${open.kind} isAdmin=${isAdmin} onClose=${() => setOpen(null)} onCreated=${created} />`}
      ${open && "image" in open && open.kind === "edit" && html`
        <${EditDialog} image=${open.image} isAdmin=${isAdmin} onClose=${() => setOpen(null)} onSaved=${list.put} />`}
      ${open && "image" in open && open.kind === "download" && html`
        <${DownloadDialog} image=${open.image} onClose=${() => setOpen(null)} />`}
      ${open && "image" in open && open.kind === "copy" && html`
        <${CopyToBaseDialog} image=${open.image} onClose=${() => setOpen(null)} onCopied=${list.put} />`}
      ${open && "image" in open && open.kind === "delete" && html`
        <${DeleteDialog} image=${open.image} onClose=${() => setOpen(null)} onDeleted=${list.drop} />`}
    </section>`;
}
