// Bringing an image in: from a URL (POST /v1/images/import; the list then shows the
// transfer's bytes, rate and ETA from its operation) or from a local file (POST /v1/images,
// then the file streamed to its content with the upload's progress shown here). The fields
// are the seed's: tenant, name and note, OS type, architecture, platform, version, target
// size; the API checks them against the seed's matrix and names the field it refuses.
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { t } from "./i18n.js";
import { call, listAll } from "./api.js";
import { Dialog } from "./ui/dialog.js";
import { Field, FormError, useForm } from "./ui/form.js";
import { ARCHITECTURES, OS_TYPES } from "./images_model.js";
import { uploadContent } from "./image_upload.js";
import { Progress } from "./image_progress.js";

/** @typedef {import("./images_model.js").Image} Image */
/** @typedef {import("../types/api").components["schemas"]["Tenant"]} Tenant */

const PLATFORMS = { linux: ["centos", "debian", "ubuntu"], windows: ["windows"] };
const FIELDS = ["url", "file", "tenant_id", "name", "note", "type", "iso_purpose", "os_type", "architecture",
  "platform", "version", "target_size_gb", "sha256", "visibility", "tags"];

/** `web, prod ,` → ["web", "prod"] @param {string} text */
export function parseTags(text) {
  return [...new Set(text.split(/[,，\s]+/).map((s) => s.trim()).filter(Boolean))];
}

/**
 * @param {{mode: "import" | "upload", isAdmin: boolean, onClose: () => void,
 *   onCreated: (image: Image) => void}} props
 */
export function NewImageDialog({ mode, isAdmin, onClose, onCreated }) {
  const { errors, setErrors, busy, submit } = useForm();
  const [tenants, setTenants] = useState(/** @type {Tenant[]} */ ([]));
  const [v, setV] = useState({
    url: "", tenant_id: "", name: "", note: "", type: "image", iso_purpose: "os", os_type: "linux",
    architecture: "x86_64", platform: "centos", version: "7.9", target_size_gb: "20", sha256: "",
    visibility: "private", tags: "",
  });
  const [file, setFile] = useState(/** @type {File | null} */ (null));
  const [progress, setProgress] = useState(/** @type {import("./image_upload.js").UploadProgress | null} */ (null));

  useEffect(() => {
    if (!isAdmin) return;
    listAll("/v1/tenants").then((/** @type {Tenant[]} */ all) => {
      setTenants(all);
      setV((old) => (old.tenant_id || !all.length ? old : { ...old, tenant_id: all[0].id }));
    }, () => {});
  }, [isAdmin]);

  /** @param {keyof typeof v} name */
  const bind = (name) => ({
    value: v[name],
    onInput: (/** @type {any} */ e) => setV({ ...v, [name]: e.currentTarget.value }),
  });

  function body() {
    /** @type {Record<string, unknown>} */
    const b = {
      name: v.name.trim(), note: v.note, type: v.type, os_type: v.os_type, architecture: v.architecture,
      platform: v.platform, version: v.version.trim(), target_size_gb: Number(v.target_size_gb),
      visibility: v.visibility, tags: parseTags(v.tags),
    };
    if (v.type === "iso") b.iso_purpose = v.iso_purpose;
    if (v.sha256.trim()) b.sha256 = v.sha256.trim();
    if (isAdmin) b.tenant_id = v.tenant_id || null;
    if (mode === "import") b.url = v.url.trim();
    return b;
  }

  async function send() {
    if (mode === "upload" && !file) {
      setErrors({ file: t("images.form.file_missing") });
      return;
    }
    await submit(FIELDS, async () => {
      if (mode === "import") {
        const image = await call("POST", "/v1/images/import", body());
        onCreated(image);
        onClose();
        return;
      }
      const declared = await call("POST", "/v1/images", body());
      onCreated(declared);
      setProgress({ bytes: 0, total: file ? file.size : null, rate: null, eta: null });
      const image = await uploadContent(declared.id, /** @type {File} */ (file), setProgress);
      onCreated(image);
      onClose();
    });
  }

  const title = mode === "import" ? t("images.import.title") : t("images.upload.title");
  const platforms = PLATFORMS[/** @type {"linux" | "windows"} */ (v.os_type)] || [];
  return html`
    <${Dialog} title=${title} onClose=${onClose} wide testid=${`${mode}-dialog`}>
      <form class="form image-form" onSubmit=${(/** @type {Event} */ e) => {
        e.preventDefault();
        if (!busy) send();
      }}>
        <div class="form-grid">
          ${mode === "import"
            ? html`<div class="span2"><${Field} label=${t("images.form.url")} name="url" error=${errors.url} hint=${t("images.form.url_hint")}>
                <input type="text" inputmode="url" autocomplete="off" required ...${bind("url")} />
              <//></div>`
            : html`<div class="span2"><${Field} label=${t("images.form.file")} name="file" error=${errors.file}>
                <input type="file" onChange=${(/** @type {any} */ e) => {
                  const f = e.currentTarget.files && e.currentTarget.files[0];
                  setFile(f || null);
                  if (f && !v.name) setV({ ...v, name: f.name.replace(/\.(qcow2|iso|img)$/i, "") });
                }} />
              <//></div>`}
          ${isAdmin && html`
            <${Field} label=${t("images.form.tenant")} name="tenant_id" error=${errors.tenant_id}>
              <select ...${bind("tenant_id")}>
                ${tenants.map((tn) => html`<option value=${tn.id} data-raw>${tn.email}</option>`)}
              </select>
            <//>`}
          <${Field} label=${t("images.form.name")} name="name" error=${errors.name}>
            <input type="text" autocomplete="off" required ...${bind("name")} />
          <//>
          <${Field} label=${t("images.form.type")} name="type" error=${errors.type}>
            <select ...${bind("type")}>
              <option value="image">${t("images.type.image")}</option>
              <option value="iso">${t("images.type.iso")}</option>
            </select>
          <//>
          ${v.type === "iso" && html`
            <${Field} label=${t("images.form.iso_purpose")} name="iso_purpose" error=${errors.iso_purpose}>
              <select ...${bind("iso_purpose")}>
                <option value="os">${t("images.purpose.os")}</option>
                <option value="tool">${t("images.purpose.tool")}</option>
              </select>
            <//>`}
          <${Field} label=${t("images.form.os_type")} name="os_type" error=${errors.os_type}>
            <select value=${v.os_type} onInput=${(/** @type {any} */ e) => {
              const os = e.currentTarget.value;
              setV({ ...v, os_type: os, platform: os === "windows" ? "windows" : "centos", version: os === "windows" ? "2019" : "7.9" });
            }}>
              ${OS_TYPES.map((o) => html`<option value=${o}>${t(/** @type {any} */ (`images.os.${o}`))}</option>`)}
            </select>
          <//>
          <${Field} label=${t("images.form.architecture")} name="architecture" error=${errors.architecture}>
            <select ...${bind("architecture")}>
              ${ARCHITECTURES.map((a) => html`<option value=${a} data-raw>${a}</option>`)}
            </select>
          <//>
          <${Field} label=${t("images.form.platform")} name="platform" error=${errors.platform}>
            <select ...${bind("platform")}>
              ${platforms.map((p) => html`<option value=${p} data-raw>${p}</option>`)}
            </select>
          <//>
          <${Field} label=${t("images.form.version")} name="version" error=${errors.version}>
            <input type="text" autocomplete="off" required ...${bind("version")} />
          <//>
          <${Field} label=${t("images.form.target_size")} name="target_size_gb" error=${errors.target_size_gb} hint=${t("images.form.target_size_hint")}>
            <input type="number" min="20" max="500" required ...${bind("target_size_gb")} />
          <//>
          <${Field} label=${t("images.form.visibility")} name="visibility" error=${errors.visibility}>
            <select ...${bind("visibility")}>
              <option value="private">${t("images.vis.private")}</option>
              <option value="public">${t("images.vis.public")}</option>
              ${isAdmin && html`<option value="featured">${t("images.vis.featured")}</option>`}
            </select>
          <//>
          <${Field} label=${t("images.form.tags")} name="tags" error=${errors.tags} hint=${t("images.form.tags_hint")}>
            <input type="text" autocomplete="off" ...${bind("tags")} />
          <//>
          <${Field} label=${t("images.form.sha256")} name="sha256" error=${errors.sha256}>
            <input type="text" autocomplete="off" class="mono" ...${bind("sha256")} />
          <//>
          <div class="span2"><${Field} label=${t("images.form.note")} name="note" error=${errors.note}>
            <textarea rows="2" ...${bind("note")}></textarea>
          <//></div>
        </div>
        ${progress && html`<${Progress} ...${progress} label=${t("images.upload.progress")} />`}
        <${FormError} errors=${errors} />
        <div class="form-actions">
          <button type="submit" class="primary" data-submit disabled=${busy}>
            ${mode === "import" ? t("images.import.submit") : busy ? t("images.upload.busy") : t("images.upload.submit")}
          </button>
          <button type="button" onClick=${onClose}>${t("ui.cancel")}</button>
        </div>
      </form>
    <//>`;
}
