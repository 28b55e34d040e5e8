// One image's actions in dialogs: edit (name, note, tags, visibility — what the API lets
// change in any status), the signed download link with its expiry and a copy button, copy to
// a base image, and delete — which, when instances use the image, is refused and shows them.
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { t } from "./i18n.js";
import { ApiError, call, listAll } from "./api.js";
import { Dialog } from "./ui/dialog.js";
import { Field, FormError, useForm } from "./ui/form.js";
import { CopyButton } from "./ui/copy.js";
import { dateTime } from "./format.js";
import { parseTags } from "./image_form.js";

/** @typedef {import("./images_model.js").Image} Image */
/** @typedef {import("../types/api").components["schemas"]["Instance"]} Instance */

/**
 * @param {{image: Image, isAdmin: boolean, onClose: () => void, onSaved: (i: Image) => void}} props
 */
export function EditDialog({ image, isAdmin, onClose, onSaved }) {
  const { errors, busy, submit } = useForm();
  const [v, setV] = useState({ name: image.name, note: image.note, tags: image.tags.join(", "), visibility: image.visibility });
  /** @param {keyof typeof v} name */
  const bind = (name) => ({ value: v[name], onInput: (/** @type {any} */ e) => setV({ ...v, [name]: e.currentTarget.value }) });
  async function save() {
    const saved = await submit(["name", "note", "tags", "visibility"], () =>
      call("PATCH", `/v1/images/${encodeURIComponent(image.id)}`, {
        name: v.name.trim(), note: v.note, tags: parseTags(v.tags), visibility: v.visibility,
      }));
    if (saved) {
      onSaved(saved);
      onClose();
    }
  }
  return html`
    <${Dialog} title=${t("images.edit.title")} onClose=${onClose} testid="edit-dialog">
      <form class="form" onSubmit=${(/** @type {Event} */ e) => {
        e.preventDefault();
        if (!busy) save();
      }}>
        <p class="hint">${t("images.edit.hint")}</p>
        <${Field} label=${t("images.form.name")} name="name" error=${errors.name}>
          <input type="text" autocomplete="off" required ...${bind("name")} />
        <//>
        <${Field} label=${t("images.form.note")} name="note" error=${errors.note}>
          <textarea rows="2" ...${bind("note")}></textarea>
        <//>
        <${Field} label=${t("images.form.tags")} name="tags" error=${errors.tags} hint=${t("images.form.tags_hint")}>
          <input type="text" autocomplete="off" ...${bind("tags")} />
        <//>
        <${Field} label=${t("images.form.visibility")} name="visibility" error=${errors.visibility}>
          <select ...${bind("visibility")}>
            <option value="private">${t("images.vis.private")}</option>
            <option value="public">${t("images.vis.public")}</option>
            ${(isAdmin || image.visibility === "featured") && html`<option value="featured">${t("images.vis.featured")}</option>`}
          </select>
        <//>
        <${FormError} errors=${errors} />
        <div class="form-actions">
          <button type="submit" class="primary" data-submit disabled=${busy}>${t("images.edit.save")}</button>
          <button type="button" onClick=${onClose}>${t("ui.cancel")}</button>
        </div>
      </form>
    <//>`;
}

/** @param {{image: Image, onClose: () => void}} props */
export function DownloadDialog({ image, onClose }) {
  const [link, setLink] = useState(/** @type {{url: string, expires_at: string} | null} */ (null));
  const [error, setError] = useState(/** @type {string | null} */ (null));
  useEffect(() => {
    call("POST", `/v1/images/${encodeURIComponent(image.id)}/download-link`).then(setLink, (e) => setError(String(e.message || e)));
  }, [image.id]);
  // The API answers a path-absolute or absolute URL; either is shown as this origin's.
  const url = link ? new URL(link.url, location.origin).href : "";
  return html`
    <${Dialog} title=${t("images.download.title")} onClose=${onClose} testid="download-dialog">
      <div class="form">
        <p class="hint">${t("images.download.hint")}</p>
        ${error && html`<p class="error" role="alert" data-raw>${error}</p>`}
        ${link
          ? html`
            <label class="field">
              <span>${t("images.download.link")}</span>
              <input readonly class="mono" value=${url} data-testid="download-url"
                onFocus=${(/** @type {any} */ e) => e.currentTarget.select()} />
            </label>
            <p data-testid="download-expires">${t("images.download.expires", { time: dateTime(link.expires_at) })}</p>
            <div class="form-actions">
              <${CopyButton} text=${url} label=${t("images.download.copy")} />
              <a class="button-link" href=${url} download>${t("images.download.open")}</a>
            </div>`
          : !error && html`<p>${t("images.download.making")}</p>`}
      </div>
    <//>`;
}

/** @param {{image: Image, onClose: () => void, onCopied: (i: Image) => void}} props */
export function CopyToBaseDialog({ image, onClose, onCopied }) {
  const { errors, busy, submit } = useForm();
  const [name, setName] = useState(image.name);
  async function copy() {
    const made = await submit(["name"], () => call("POST", `/v1/images/${encodeURIComponent(image.id)}/copy-to-base`, { name: name.trim() }));
    if (made) {
      onCopied(made);
      onClose();
    }
  }
  return html`
    <${Dialog} title=${t("images.copy.title")} onClose=${onClose} testid="copy-dialog">
      <form class="form" onSubmit=${(/** @type {Event} */ e) => {
        e.preventDefault();
        if (!busy) copy();
      }}>
        <p class="hint">${t("images.copy.hint")}</p>
        <${Field} label=${t("images.copy.name")} name="name" error=${errors.name}>
          <input type="text" autocomplete="off" required value=${name} onInput=${(/** @type {any} */ e) => setName(e.currentTarget.value)} />
        <//>
        <${FormError} errors=${errors} />
        <div class="form-actions">
          <button type="submit" class="primary" data-submit disabled=${busy}>${t("images.copy.submit")}</button>
          <button type="button" onClick=${onClose}>${t("ui.cancel")}</button>
        </div>
      </form>
    <//>`;
}

/**
 * Delete, confirmed; a custom image goes to its tenant's recycle bin. Refused because
 * instances use it, the dialog lists them (the instances whose image it is).
 * @param {{image: Image, onClose: () => void, onDeleted: (id: string) => void}} props
 */
export function DeleteDialog({ image, onClose, onDeleted }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(/** @type {string | null} */ (null));
  const [users, setUsers] = useState(/** @type {Instance[] | null} */ (null));
  async function remove() {
    setBusy(true);
    setError(null);
    try {
      await call("DELETE", `/v1/images/${encodeURIComponent(image.id)}`);
      onDeleted(image.id);
      onClose();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
      if (err instanceof ApiError && err.code === "image_in_use") {
        /** @type {Instance[]} */
        const found = await listAll(`/v1/instances?q=${encodeURIComponent(image.id)}`).catch(() => []);
        setUsers(found.filter((i) => i.image_id === image.id));
      }
    } finally {
      setBusy(false);
    }
  }
  const custom = image.kind === "custom";
  return html`
    <${Dialog} title=${t("images.delete.title")} onClose=${onClose} testid="delete-dialog">
      <div class="form">
        <p>${custom ? t("images.delete.custom") : t("images.delete.base")}</p>
        <p><strong data-raw>${image.name}</strong> <code class="mono" data-raw>${image.id}</code></p>
        ${error && html`<p class="error" role="alert" data-raw data-testid="delete-error">${error}</p>`}
        ${users && html`
          <div class="in-use" data-testid="in-use">
            <h3>${t("images.delete.in_use", { n: users.length })}</h3>
            <ul>
              ${users.map((i) => html`
                <li data-instance-id=${i.id}>
                  <a href=${`#/instances/${encodeURIComponent(i.id)}`} data-raw>${i.name}</a>
                  <code class="mono" data-raw>${i.id}</code>
                  <span class="badge" data-raw>${i.state}</span>
                </li>`)}
            </ul>
            <p class="hint">${t("images.delete.in_use_hint")}</p>
          </div>`}
        <div class="form-actions">
          <button type="button" class="danger" data-confirm disabled=${busy || !!users} onClick=${remove}>${t("images.delete.submit")}</button>
          <button type="button" onClick=${onClose}>${t("ui.cancel")}</button>
        </div>
      </div>
    <//>`;
}
