// Who may use a segment: every tenant, or the tenants chosen by email. Changing it never
// touches EIPs already allocated; a tenant left out cannot allocate there again.
import { useState } from "preact/hooks";
import { html } from "./html.js";
import { t } from "./i18n.js";
import { call } from "./api.js";
import { Dialog } from "./ui/dialog.js";
import { FormError, useForm } from "./ui/form.js";
import { useTenants } from "./tenants_model.js";

/** @typedef {import("../types/api").components["schemas"]["Segment"]} Segment */

/** @param {{segment: Segment, onClose: () => void, onSaved: (s: Segment) => void}} props */
export function PermissionDialog({ segment, onClose, onSaved }) {
  const { tenants, loaded, error } = useTenants(true);
  const [all, setAll] = useState(segment.permission.all_tenants);
  const [chosen, setChosen] = useState(() => new Set(segment.permission.tenants.map((p) => p.email)));
  const { errors, busy, submit } = useForm();
  const emails = [...new Set([...tenants.map((x) => x.email), ...chosen])].sort();

  /** @param {string} email */
  function toggle(email) {
    const next = new Set(chosen);
    if (next.has(email)) next.delete(email);
    else next.add(email);
    setChosen(next);
  }

  /** @param {Event} e */
  async function save(e) {
    e.preventDefault();
    const saved = await submit(["all_tenants", "tenants"], () =>
      call("PUT", `/v1/segments/${encodeURIComponent(segment.id)}/permissions`, {
        all_tenants: all,
        tenants: all ? [] : [...chosen],
      }));
    if (saved) onSaved(saved);
  }

  return html`
    <${Dialog} title=${t("network.perm.title")} onClose=${onClose} testid="permission-form">
      <form class="form" onSubmit=${save}>
        <p>${t("network.perm.text")} <span class="mono" data-raw>${segment.name}</span></p>
        <fieldset class="net-perm">
          <legend>${t("network.col.permission")}</legend>
          <label><input type="radio" name="perm" value="all" checked=${all} onChange=${() => setAll(true)} /> ${t("network.permission.all")}</label>
          <label><input type="radio" name="perm" value="chosen" checked=${!all} onChange=${() => setAll(false)} /> ${t("network.perm.chosen")}</label>
        </fieldset>
        ${!all && html`
          <fieldset class="net-perm-tenants" data-field="tenants">
            <legend>${t("network.perm.tenants")}</legend>
            ${error && html`<p class="error" role="alert" data-raw>${error}</p>`}
            ${loaded && emails.length === 0 && html`<p class="empty">${t("network.perm.no_tenants")}</p>`}
            ${emails.map((email) => html`
              <label class="net-perm-tenant">
                <input type="checkbox" value=${email} checked=${chosen.has(email)} onChange=${() => toggle(email)} />
                <span data-raw>${email}</span>
              </label>`)}
            ${errors.tenants && html`<p class="field-error" role="alert" data-raw>${errors.tenants}</p>`}
          </fieldset>`}
        <p class="hint">${t("network.perm.hint")}</p>
        <${FormError} errors=${errors} />
        <div class="form-actions">
          <button type="submit" class="primary" disabled=${busy}>${t("network.form.save")}</button>
          <button type="button" onClick=${onClose}>${t("ui.cancel")}</button>
        </div>
      </form>
    <//>`;
}
