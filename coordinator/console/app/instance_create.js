// Create an instance: a name, an image (a disk image, or an `os` ISO to install from), its
// size, and the guest's administrator password (sent once, never shown again); an admin names
// the tenant. Every error the API names a field of is shown under that field.
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { t } from "./i18n.js";
import { call, listAll } from "./api.js";
import { Dialog } from "./ui/dialog.js";
import { Field, FormError, useForm } from "./ui/form.js";

/** @typedef {import("./instances_model.js").Image} Image */
/** @typedef {import("./instances_model.js").Instance} Instance */
/** @typedef {import("../types/api").components["schemas"]["Tenant"]} Tenant */

const MIB = 2 ** 20;
const GIB = 2 ** 30;
const FIELDS = ["name", "tenant_id", "image_id", "vcpus", "memory_bytes", "disk_bytes", "admin_password"];

/** Images that can boot an instance: available disk images and `os` ISOs. @param {Image} i */
function bootable(i) {
  return i.status === "available" && !i.deleted_at && (i.type === "image" || i.iso_purpose === "os");
}

/**
 * @param {{isAdmin: boolean, onClose: () => void, onCreated: (i: Instance) => void}} props
 */
export function CreateInstance({ isAdmin, onClose, onCreated }) {
  const { errors, busy, submit } = useForm();
  const [images, setImages] = useState(/** @type {Image[]} */ ([]));
  const [tenants, setTenants] = useState(/** @type {Tenant[]} */ ([]));
  const [loadError, setLoadError] = useState(/** @type {string | null} */ (null));
  const [v, setV] = useState({ name: "", tenant_id: "", image_id: "", vcpus: "1", memory: "512", disk: "", password: "" });

  useEffect(() => {
    listAll("/v1/images?status=available")
      .then((/** @type {Image[]} */ all) => setImages(all.filter(bootable)))
      .catch((err) => setLoadError(err.message));
    if (isAdmin) {
      listAll("/v1/tenants")
        .then((/** @type {Tenant[]} */ all) => setTenants(all))
        .catch((err) => setLoadError(err.message));
    }
  }, [isAdmin]);

  /** @param {keyof typeof v} k */
  const bind = (k) => ({
    value: v[k],
    onInput: (/** @type {any} */ e) => setV({ ...v, [k]: e.currentTarget.value }),
  });

  async function create(/** @type {Event} */ e) {
    e.preventDefault();
    /** @type {Record<string, unknown>} */
    const body = {
      name: v.name.trim(),
      image_id: v.image_id,
      vcpus: Number(v.vcpus),
      memory_bytes: Math.round(Number(v.memory) * MIB),
      admin_password: v.password,
    };
    if (v.disk.trim()) body.disk_bytes = Math.round(Number(v.disk) * GIB);
    if (isAdmin) body.tenant_id = v.tenant_id || null;
    const created = await submit(FIELDS, () => call("POST", "/v1/instances", body));
    if (created) onCreated(created);
  }

  const disks = images.filter((i) => i.type === "image");
  const isos = images.filter((i) => i.type === "iso");
  const chosen = images.find((i) => i.id === v.image_id);

  return html`
    <${Dialog} title=${t("inst.create.title")} onClose=${onClose} testid="create-instance">
      <form class="form" onSubmit=${create} novalidate>
        ${loadError && html`<p class="error" role="alert" data-raw>${loadError}</p>`}
        <${Field} label=${t("inst.field.name")} name="name" error=${errors.name} hint=${t("inst.field.name_hint")}>
          <input autocomplete="off" ...${bind("name")} />
        <//>
        ${isAdmin && html`
          <${Field} label=${t("inst.field.tenant")} name="tenant_id" error=${errors.tenant_id}>
            <select ...${bind("tenant_id")}>
              <option value="">${t("inst.field.choose")}</option>
              ${tenants.map((tn) => html`<option value=${tn.id} data-raw>${tn.email}</option>`)}
            </select>
          <//>`}
        <${Field} label=${t("inst.field.image")} name="image_id" error=${errors.image_id}
          hint=${chosen && chosen.type === "iso" ? t("inst.field.iso_hint") : t("inst.field.image_hint")}>
          <select ...${bind("image_id")}>
            <option value="">${t("inst.field.choose")}</option>
            ${disks.length > 0 && html`<optgroup label=${t("inst.field.images")}>
              ${disks.map((i) => html`<option value=${i.id} data-raw>${i.name} · ${i.id}</option>`)}
            </optgroup>`}
            ${isos.length > 0 && html`<optgroup label=${t("inst.field.isos")}>
              ${isos.map((i) => html`<option value=${i.id} data-raw>${i.name} · ${i.id}</option>`)}
            </optgroup>`}
          </select>
        <//>
        <div class="inst-form-row">
          <${Field} label=${t("inst.field.vcpus")} name="vcpus" error=${errors.vcpus}>
            <input type="number" min="1" step="1" inputmode="numeric" ...${bind("vcpus")} />
          <//>
          <${Field} label=${t("inst.field.memory")} name="memory_bytes" error=${errors.memory_bytes}>
            <input type="number" min="64" step="64" inputmode="numeric" ...${bind("memory")} />
          <//>
          <${Field} label=${t("inst.field.disk")} name="disk_bytes" error=${errors.disk_bytes} hint=${t("inst.field.disk_hint")}>
            <input type="number" min="1" step="1" inputmode="numeric" ...${bind("disk")} />
          <//>
        </div>
        <${Field} label=${t("inst.field.password")} name="admin_password" error=${errors.admin_password}
          hint=${t("inst.field.password_hint")}>
          <input type="password" autocomplete="new-password" ...${bind("password")} />
        <//>
        <${FormError} errors=${errors} />
        <div class="form-actions">
          <button type="submit" class="primary" disabled=${busy}>${busy ? t("inst.create.busy") : t("inst.create.submit")}</button>
          <button type="button" onClick=${onClose}>${t("ui.cancel")}</button>
        </div>
      </form>
    <//>`;
}
