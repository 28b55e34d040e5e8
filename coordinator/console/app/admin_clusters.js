// Clusters: each with its hosts' count; create one (agents enroll into it by id).
import { useState } from "preact/hooks";
import { html } from "./html.js";
import { t } from "./i18n.js";
import { call } from "./api.js";
import { dateTime, shortTime } from "./format.js";
import { Dialog } from "./ui/dialog.js";
import { Field, FormError, useForm } from "./ui/form.js";
import { useClusters } from "./clusters_model.js";

export function ClustersTab() {
  const { clusters, loaded, error, reload } = useClusters();
  const [open, setOpen] = useState(false);
  return html`
    <div class="admin-clusters">
      <div class="toolbar">
        <span class="count">${t("admin.clusters.count", { n: clusters.length })}</span>
        <button type="button" class="primary" data-testid="cluster-add" onClick=${() => setOpen(true)}>${t("admin.clusters.add")}</button>
      </div>
      ${error && html`<p class="error" role="alert" data-raw>${error}</p>`}
      <div class="net-table-wrap" tabindex="0" role="region" aria-label=${t("admin.tab.clusters")}>
        <table class="net-table">
          <thead>
            <tr>
              <th scope="col">${t("admin.clusters.id")}</th>
              <th scope="col">${t("admin.clusters.description")}</th>
              <th scope="col">${t("admin.clusters.hosts")}</th>
              <th scope="col">${t("admin.col.created")}</th>
            </tr>
          </thead>
          <tbody>
            ${clusters.map((c) => html`
              <tr key=${c.id} data-cluster-id=${c.id}>
                <td class="mono" data-raw>${c.id}</td>
                <td data-raw>${c.description}</td>
                <td><a href=${`#/hosts?cluster=${encodeURIComponent(c.id)}`} data-raw>${c.host_count}</a></td>
                <td data-raw title=${dateTime(c.created_at)}>${shortTime(c.created_at)}</td>
              </tr>`)}
          </tbody>
        </table>
        ${loaded && clusters.length === 0 && html`<p class="empty">${t("admin.clusters.empty")}</p>`}
      </div>
      ${open && html`<${ClusterForm} onClose=${() => setOpen(false)} onSaved=${() => { setOpen(false); reload(); }} />`}
    </div>`;
}

/** @param {{onClose: () => void, onSaved: () => void}} props */
function ClusterForm({ onClose, onSaved }) {
  const [v, setV] = useState({ id: "", description: "" });
  const { errors, busy, submit } = useForm();
  const set = (/** @type {string} */ f, /** @type {string} */ value) => setV({ ...v, [f]: value });
  /** @param {Event} e */
  async function save(e) {
    e.preventDefault();
    const made = await submit(["id", "description"], () => call("POST", "/v1/clusters", { id: v.id.trim(), description: v.description.trim() }));
    if (made) onSaved();
  }
  return html`
    <${Dialog} title=${t("admin.clusters.add")} onClose=${onClose} testid="cluster-form">
      <form class="form" onSubmit=${save}>
        <${Field} label=${t("admin.clusters.id")} name="id" error=${errors.id} hint=${t("admin.clusters.id_hint")}>
          <input autocomplete="off" class="mono" value=${v.id} onInput=${(/** @type {any} */ e) => set("id", e.currentTarget.value)} />
        <//>
        <${Field} label=${t("admin.clusters.description")} name="description" error=${errors.description}>
          <input autocomplete="off" value=${v.description} onInput=${(/** @type {any} */ e) => set("description", e.currentTarget.value)} />
        <//>
        <${FormError} errors=${errors} />
        <div class="form-actions">
          <button type="submit" class="primary" disabled=${busy}>${t("admin.create")}</button>
          <button type="button" onClick=${onClose}>${t("ui.cancel")}</button>
        </div>
      </form>
    <//>`;
}
