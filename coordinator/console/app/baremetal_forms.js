// Adding a bare-metal server (the seed's fields; an admin names the tenant, a tenant adds for
// itself) and updating its rack location and label. The password field is write-only: it is
// sent once and never filled in from anything the API answers (the API never returns it).
import { useState } from "preact/hooks";
import { html } from "./html.js";
import { call } from "./api.js";
import { t } from "./i18n.js";
import { Dialog } from "./ui/dialog.js";
import { Field, FormError, useForm } from "./ui/form.js";

/** @typedef {import("../types/api").components["schemas"]["Baremetal"]} Baremetal */
/** @typedef {import("../types/api").components["schemas"]["NewBaremetal"]} NewBaremetal */

const ADD_FIELDS = ["tenant_email", "name", "ipmi_ip", "ipmi_username", "ipmi_password", "rack_location", "label"];

/** @param {Event} e */
const value = (e) => /** @type {HTMLInputElement} */ (e.currentTarget).value;

/**
 * @param {{isAdmin: boolean, onAdded: (b: Baremetal) => void, onClose: () => void}} props
 */
export function AddServer({ isAdmin, onAdded, onClose }) {
  const { errors, busy, submit } = useForm();
  const [v, setV] = useState({ tenant_email: "", name: "", ipmi_ip: "", ipmi_username: "", rack_location: "", label: "" });
  // Kept apart from the rest, and cleared after every try: nothing shows it again.
  const [password, setPassword] = useState("");
  /** @param {keyof typeof v} k */
  const set = (k) => (/** @type {Event} */ e) => setV({ ...v, [k]: value(e) });

  /** @param {Event} e */
  async function add(e) {
    e.preventDefault();
    /** @type {NewBaremetal} */
    const body = {
      name: v.name.trim(),
      ipmi_ip: v.ipmi_ip.trim(),
      ipmi_username: v.ipmi_username,
      ipmi_password: password,
      rack_location: v.rack_location.trim(),
      label: v.label.trim() || null,
    };
    if (isAdmin) body.tenant_email = v.tenant_email.trim();
    const added = await submit(ADD_FIELDS, () => call("POST", "/v1/baremetal", body));
    setPassword("");
    if (added) onAdded(added);
  }

  return html`
    <${Dialog} title=${t("bm.add.title")} onClose=${onClose} testid="bm-add">
      <form class="form" onSubmit=${add} autocomplete="off">
        ${isAdmin && html`
          <${Field} label=${t("bm.field.tenant_email")} name="tenant_email" error=${errors.tenant_email} hint=${t("bm.hint.tenant_email")}>
            <input type="email" required value=${v.tenant_email} onInput=${set("tenant_email")} />
          <//>`}
        <${Field} label=${t("bm.field.name")} name="name" error=${errors.name}>
          <input required value=${v.name} onInput=${set("name")} />
        <//>
        <${Field} label=${t("bm.field.ipmi_ip")} name="ipmi_ip" error=${errors.ipmi_ip} hint=${t("bm.hint.ipmi_ip")}>
          <input required class="mono" value=${v.ipmi_ip} onInput=${set("ipmi_ip")} />
        <//>
        <${Field} label=${t("bm.field.ipmi_username")} name="ipmi_username" error=${errors.ipmi_username}>
          <input required value=${v.ipmi_username} onInput=${set("ipmi_username")} />
        <//>
        <${Field} label=${t("bm.field.ipmi_password")} name="ipmi_password" error=${errors.ipmi_password} hint=${t("bm.hint.ipmi_password")}>
          <input type="password" required autocomplete="new-password" value=${password}
            onInput=${(/** @type {Event} */ e) => setPassword(value(e))} />
        <//>
        <${Field} label=${t("bm.field.rack_location")} name="rack_location" error=${errors.rack_location}>
          <input required value=${v.rack_location} onInput=${set("rack_location")} />
        <//>
        <${Field} label=${t("bm.field.label")} name="label" error=${errors.label} hint=${t("bm.hint.label")}>
          <input value=${v.label} onInput=${set("label")} />
        <//>
        <${FormError} errors=${errors} />
        <div class="form-actions">
          <button type="submit" class="primary" disabled=${busy}>${t("bm.add.submit")}</button>
          <button type="button" onClick=${onClose}>${t("ui.cancel")}</button>
        </div>
      </form>
    <//>`;
}

/**
 * @param {{server: Baremetal, onSaved: (b: Baremetal) => void, onClose: () => void}} props
 */
export function UpdateServer({ server, onSaved, onClose }) {
  const { errors, busy, submit } = useForm();
  const [rack, setRack] = useState(server.rack_location);
  const [label, setLabel] = useState(server.label || "");

  /** @param {Event} e */
  async function save(e) {
    e.preventDefault();
    const path = `/v1/baremetal/${encodeURIComponent(server.id)}`;
    const saved = await submit(["rack_location", "label"], () => call("PATCH", path, { rack_location: rack.trim(), label: label.trim() }));
    if (saved) onSaved(saved);
  }

  return html`
    <${Dialog} title=${t("bm.update.title", { name: server.name })} onClose=${onClose} testid="bm-update">
      <form class="form" onSubmit=${save}>
        <${Field} label=${t("bm.field.rack_location")} name="rack_location" error=${errors.rack_location}>
          <input required value=${rack} onInput=${(/** @type {Event} */ e) => setRack(value(e))} />
        <//>
        <${Field} label=${t("bm.field.label")} name="label" error=${errors.label} hint=${t("bm.hint.label")}>
          <input value=${label} onInput=${(/** @type {Event} */ e) => setLabel(value(e))} />
        <//>
        <${FormError} errors=${errors} />
        <div class="form-actions">
          <button type="submit" class="primary" disabled=${busy}>${t("bm.update.submit")}</button>
          <button type="button" onClick=${onClose}>${t("ui.cancel")}</button>
        </div>
      </form>
    <//>`;
}
