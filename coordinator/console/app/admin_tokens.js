// API tokens: the live ones (never their secrets), create one (admin, or acting as a tenant)
// whose secret is shown once with a copy button, revoke one.
import { useState } from "preact/hooks";
import { html } from "./html.js";
import { t } from "./i18n.js";
import { call } from "./api.js";
import { useListOnce } from "./list_once.js";
import { dateTime, shortTime } from "./format.js";
import { Dialog, TypedConfirm } from "./ui/dialog.js";
import { Field, FormError, useForm } from "./ui/form.js";
import { CopyButton } from "./ui/copy.js";
import { useTenants } from "./tenants_model.js";

/** @typedef {import("../types/api").components["schemas"]["ApiToken"]} ApiToken */
/** @typedef {import("../types/api").components["schemas"]["CreatedToken"]} CreatedToken */

export function TokensTab() {
  const { items: tokens, loaded, error, reload } =
    /** @type {ReturnType<typeof useListOnce<ApiToken>>} */ (useListOnce("/v1/tokens"));
  const { tenants } = useTenants(true);
  /** @type {[{kind: "new"} | {kind: "revoke", token: ApiToken} | null, (d: any) => void]} */
  const [open, setOpen] = useState(/** @type {any} */ (null));
  const [created, setCreated] = useState(/** @type {CreatedToken | null} */ (null));
  const [revokeError, setRevokeError] = useState(/** @type {string | null} */ (null));
  const [busy, setBusy] = useState(false);


  const email = new Map(tenants.map((x) => [x.id, x.email]));

  /** @param {ApiToken} tok */
  async function revoke(tok) {
    setBusy(true);
    try {
      await call("DELETE", `/v1/tokens/${encodeURIComponent(tok.id)}`);
      setOpen(null);
      reload();
    } catch (err) {
      setRevokeError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  return html`
    <div class="admin-tokens">
      <div class="toolbar">
        <span class="count">${t("admin.tokens.count", { n: tokens.length })}</span>
        <button type="button" class="primary" data-testid="token-add" onClick=${() => { setCreated(null); setOpen({ kind: "new" }); }}>${t("admin.tokens.add")}</button>
      </div>
      ${created && html`
        <div class="secret-once" role="status" data-testid="token-secret">
          <h2>${t("admin.tokens.created")} <span data-raw>${created.name}</span></h2>
          <p>${t("admin.tokens.once")}</p>
          <div class="secret-row">
            <input readonly class="mono" aria-label=${t("admin.tokens.secret")} value=${created.secret} data-raw
              onFocus=${(/** @type {any} */ e) => e.currentTarget.select()} />
            <${CopyButton} text=${created.secret} />
          </div>
          <button type="button" onClick=${() => setCreated(null)}>${t("admin.done")}</button>
        </div>`}
      ${error && html`<p class="error" role="alert" data-raw>${error}</p>`}
      <div class="net-table-wrap" tabindex="0" role="region" aria-label=${t("admin.tab.tokens")}>
        <table class="net-table">
          <thead>
            <tr>
              <th scope="col">${t("admin.tokens.name")}</th>
              <th scope="col">${t("admin.col.id")}</th>
              <th scope="col">${t("admin.tokens.role")}</th>
              <th scope="col">${t("admin.tokens.tenant")}</th>
              <th scope="col">${t("admin.col.created")}</th>
              <th scope="col">${t("admin.tokens.created_by")}</th>
              <th scope="col">${t("admin.tokens.expires")}</th>
              <th scope="col">${t("admin.col.actions")}</th>
            </tr>
          </thead>
          <tbody>
            ${tokens.map((tok) => html`
              <tr key=${tok.id} data-token-id=${tok.id}>
                <td data-raw>${tok.name}</td>
                <td class="mono" data-raw>${tok.id}</td>
                <td>${t(/** @type {any} */ (`admin.role.${tok.role}`))}</td>
                <td data-raw>${tok.tenant_id ? email.get(tok.tenant_id) || tok.tenant_id : ""}</td>
                <td data-raw title=${dateTime(tok.created_at)}>${shortTime(tok.created_at)}</td>
                <td class="mono" data-raw>${tok.created_by}</td>
                <td>${tok.expires_at ? html`<span data-raw title=${dateTime(tok.expires_at)}>${shortTime(tok.expires_at)}</span>` : t("admin.tokens.never")}</td>
                <td><button type="button" class="link" data-action="revoke" onClick=${() => { setRevokeError(null); setOpen({ kind: "revoke", token: tok }); }}>${t("admin.tokens.revoke")}</button></td>
              </tr>`)}
          </tbody>
        </table>
        ${loaded && tokens.length === 0 && html`<p class="empty">${t("admin.tokens.empty")}</p>`}
      </div>
      ${open && open.kind === "new" && html`
        <${TokenForm} tenants=${tenants} onClose=${() => setOpen(null)} onCreated=${(/** @type {CreatedToken} */ tok) => {
          setCreated(tok);
          setOpen(null);
          reload();
        }} />`}
      ${open && open.kind === "revoke" && html`
        <${TypedConfirm} title=${t("admin.tokens.revoke_title")} text=${t("admin.tokens.revoke_text")}
          expect=${open.token.name} action=${t("admin.tokens.revoke")} busy=${busy} error=${revokeError}
          onConfirm=${() => revoke(open.token)} onCancel=${() => setOpen(null)} />`}
    </div>`;
}

/**
 * @param {{tenants: import("./tenants_model.js").Tenant[], onClose: () => void,
 *   onCreated: (t: CreatedToken) => void}} props
 */
function TokenForm({ tenants, onClose, onCreated }) {
  const [v, setV] = useState({ name: "", role: "tenant", tenant_id: "", ttl: "" });
  const { errors, busy, submit } = useForm();
  const set = (/** @type {string} */ f, /** @type {string} */ value) => setV({ ...v, [f]: value });

  /** @param {Event} e */
  async function save(e) {
    e.preventDefault();
    const tok = await submit(["name", "role", "tenant_id", "ttl"], () => call("POST", "/v1/tokens", {
      name: v.name.trim(),
      role: v.role,
      tenant_id: v.role === "tenant" ? v.tenant_id : null,
      ttl: v.ttl.trim() || null,
    }));
    if (tok) onCreated(tok);
  }

  return html`
    <${Dialog} title=${t("admin.tokens.add")} onClose=${onClose} testid="token-form">
      <form class="form" onSubmit=${save}>
        <${Field} label=${t("admin.tokens.name")} name="name" error=${errors.name}>
          <input autocomplete="off" value=${v.name} onInput=${(/** @type {any} */ e) => set("name", e.currentTarget.value)} />
        <//>
        <${Field} label=${t("admin.tokens.role")} name="role" error=${errors.role}>
          <select value=${v.role} onChange=${(/** @type {any} */ e) => set("role", e.currentTarget.value)}>
            <option value="tenant">${t("admin.role.tenant")}</option>
            <option value="admin">${t("admin.role.admin")}</option>
          </select>
        <//>
        ${v.role === "tenant" && html`
          <${Field} label=${t("admin.tokens.tenant")} name="tenant_id" error=${errors.tenant_id}>
            <select value=${v.tenant_id} onChange=${(/** @type {any} */ e) => set("tenant_id", e.currentTarget.value)}>
              <option value="">${t("admin.tokens.choose_tenant")}</option>
              ${tenants.map((x) => html`<option value=${x.id} data-raw>${x.email}</option>`)}
            </select>
          <//>`}
        <${Field} label=${t("admin.tokens.ttl")} name="ttl" error=${errors.ttl} hint=${t("admin.tokens.ttl_hint")}>
          <input autocomplete="off" placeholder=${t("admin.tokens.ttl_placeholder")} value=${v.ttl} onInput=${(/** @type {any} */ e) => set("ttl", e.currentTarget.value)} />
        <//>
        <${FormError} errors=${errors} />
        <div class="form-actions">
          <button type="submit" class="primary" disabled=${busy || (v.role === "tenant" && !v.tenant_id)}>${t("admin.create")}</button>
          <button type="button" onClick=${onClose}>${t("ui.cancel")}</button>
        </div>
      </form>
    <//>`;
}
