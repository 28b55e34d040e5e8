// The EIPs (弹性 EIP): admins see every tenant's, a tenant its own. Allocate one from a
// segment the tenant may use (or any of a family), bind it to an instance of its tenant,
// unbind it, release it (only when unbound).
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { t } from "./i18n.js";
import { call, listAll } from "./api.js";
import { dateTime, shortTime } from "./format.js";
import { Dialog, TypedConfirm } from "./ui/dialog.js";
import { Field, FormError, useForm } from "./ui/form.js";
import { useTenants } from "./tenants_model.js";

/** @typedef {import("../types/api").components["schemas"]["Eip"]} Eip */
/** @typedef {import("../types/api").components["schemas"]["Segment"]} Segment */
/** @typedef {import("../types/api").components["schemas"]["Instance"]} Instance */

/**
 * @param {{isAdmin: boolean, segments: Segment[], list: {items: Eip[], loaded: boolean,
 *   error: string | null, put: (e: Eip) => void, drop: (id: string) => void}}} props
 */
export function EipList({ isAdmin, segments, list }) {
  /** @type {[{kind: "allocate" | "bind" | "release", eip?: Eip} | null, (d: any) => void]} */
  const [open, setOpen] = useState(/** @type {any} */ (null));
  const [rowError, setRowError] = useState(/** @type {{id: string, message: string} | null} */ (null));
  const [busy, setBusy] = useState(false);
  const eips = [...list.items].sort((a, b) => a.address.localeCompare(b.address, "en", { numeric: true }));

  /** @param {Eip} eip */
  async function unbind(eip) {
    setRowError(null);
    try {
      list.put(await call("POST", `/v1/eips/${encodeURIComponent(eip.id)}/unbind`, {}));
    } catch (err) {
      setRowError({ id: eip.id, message: err instanceof Error ? err.message : String(err) });
    }
  }

  /** @param {Eip} eip */
  async function release(eip) {
    setBusy(true);
    try {
      await call("DELETE", `/v1/eips/${encodeURIComponent(eip.id)}`);
      list.drop(eip.id);
      setOpen(null);
    } catch (err) {
      setRowError({ id: eip.id, message: err instanceof Error ? err.message : String(err) });
      setOpen(null);
    } finally {
      setBusy(false);
    }
  }

  return html`
    <div class="net-eips">
      <div class="toolbar">
        <span class="count" data-testid="eip-count">${t("network.eips.count", { n: eips.length })}</span>
        <button type="button" class="primary" data-testid="eip-allocate" onClick=${() => setOpen({ kind: "allocate" })}>${t("network.eips.allocate")}</button>
      </div>
      ${list.error && html`<p class="error" role="alert" data-raw>${list.error}</p>`}
      ${rowError && html`<p class="error" role="alert" data-raw data-testid="eip-error">${rowError.message}</p>`}
      <div class="net-table-wrap" tabindex="0" role="region" aria-label=${t("network.eips.title")}>
        <table class="net-table cards">
          <thead>
            <tr>
              <th scope="col">${t("network.eip.address")}</th>
              <th scope="col">${t("network.col.id")}</th>
              <th scope="col">${t("network.eip.segment")}</th>
              ${isAdmin && html`<th scope="col">${t("network.eip.tenant")}</th>`}
              <th scope="col">${t("network.col.state")}</th>
              <th scope="col">${t("network.eip.instance")}</th>
              <th scope="col">${t("network.col.updated")}</th>
              <th scope="col">${t("network.col.actions")}</th>
            </tr>
          </thead>
          <tbody>
            ${eips.map((e) => html`
              <tr key=${e.id} data-eip-id=${e.id} data-state=${e.state}>
                <td data-label=${t("network.eip.address")} class="mono" data-raw>${e.address}</td>
                <td data-label=${t("network.col.id")} class="mono" data-raw>${e.id}</td>
                <td data-label=${t("network.eip.segment")} data-raw>${e.segment_name}</td>
                ${isAdmin && html`<td data-label=${t("network.eip.tenant")} data-raw>${e.tenant_email}</td>`}
                <td data-label=${t("network.col.state")}><span class=${`badge eip-${e.state}`}>${t(/** @type {any} */ (`network.eip.state.${e.state}`))}</span></td>
                <td data-label=${t("network.eip.instance")} class="mono">${e.instance_id ? html`<a href=${`#/instances/${encodeURIComponent(e.instance_id)}`} data-raw>${e.instance_id}</a>` : ""}</td>
                <td data-label=${t("network.col.updated")} data-raw title=${dateTime(e.updated_at)}>${shortTime(e.updated_at)}</td>
                <td data-label=${t("network.col.actions")}><div class="net-actions">
                  ${e.state === "allocated"
                    ? html`
                      <button type="button" class="link" data-action="bind" onClick=${() => setOpen({ kind: "bind", eip: e })}>${t("network.eip.bind")}</button>
                      <button type="button" class="link" data-action="release" onClick=${() => setOpen({ kind: "release", eip: e })}>${t("network.eip.release")}</button>`
                    : html`<button type="button" class="link" data-action="unbind" onClick=${() => unbind(e)}>${t("network.eip.unbind")}</button>`}
                </div></td>
              </tr>`)}
          </tbody>
        </table>
        ${list.loaded && eips.length === 0 && html`<p class="empty">${t("network.eips.empty")}</p>`}
      </div>
      ${open && open.kind === "allocate" && html`
        <${AllocateDialog} isAdmin=${isAdmin} segments=${segments} onClose=${() => setOpen(null)}
          onDone=${(/** @type {Eip} */ e) => { list.put(e); setOpen(null); }} />`}
      ${open && open.kind === "bind" && open.eip && html`
        <${BindDialog} isAdmin=${isAdmin} eip=${open.eip} onClose=${() => setOpen(null)}
          onDone=${(/** @type {Eip} */ e) => { list.put(e); setOpen(null); }} />`}
      ${open && open.kind === "release" && open.eip && html`
        <${TypedConfirm} title=${t("network.release.title")} text=${t("network.release.text")}
          expect=${open.eip.address} action=${t("network.eip.release")} busy=${busy}
          onConfirm=${() => open.eip && release(open.eip)} onCancel=${() => setOpen(null)} />`}
    </div>`;
}

/**
 * @param {{isAdmin: boolean, segments: Segment[], onClose: () => void, onDone: (e: Eip) => void}} props
 */
function AllocateDialog({ isAdmin, segments, onClose, onDone }) {
  const { tenants } = useTenants(isAdmin);
  const [segment, setSegment] = useState("v4");
  const [tenant, setTenant] = useState("");
  const { errors, busy, submit } = useForm();
  const open = segments.filter((s) => s.state === "available");

  /** @param {Event} e */
  async function save(e) {
    e.preventDefault();
    /** @type {Record<string, unknown>} */
    const body = segment === "v4" || segment === "v6"
      ? { ip_version: segment === "v6" ? 6 : 4 }
      : { segment_id: segment };
    if (isAdmin) body.tenant_id = tenant;
    const eip = await submit(["segment_id", "ip_version", "tenant_id"], () => call("POST", "/v1/eips", body));
    if (eip) onDone(eip);
  }

  return html`
    <${Dialog} title=${t("network.eips.allocate")} onClose=${onClose} testid="allocate-form">
      <form class="form" onSubmit=${save}>
        ${isAdmin && html`
          <${Field} label=${t("network.eip.tenant")} name="tenant_id" error=${errors.tenant_id}>
            <select value=${tenant} required onChange=${(/** @type {any} */ e) => setTenant(e.currentTarget.value)}>
              <option value="">${t("network.eip.choose_tenant")}</option>
              ${tenants.map((x) => html`<option value=${x.id} data-raw>${x.email}</option>`)}
            </select>
          <//>`}
        <${Field} label=${t("network.eip.segment")} name="segment_id" error=${errors.segment_id || errors.ip_version}>
          <select value=${segment} onChange=${(/** @type {any} */ e) => setSegment(e.currentTarget.value)}>
            <option value="v4">${t("network.eip.any_v4")}</option>
            <option value="v6">${t("network.eip.any_v6")}</option>
            ${open.map((s) => html`<option value=${s.id} data-raw>${`${s.name} (${s.cidr})`}</option>`)}
          </select>
        <//>
        <${FormError} errors=${errors} />
        <div class="form-actions">
          <button type="submit" class="primary" disabled=${busy || (isAdmin && !tenant)}>${t("network.eips.allocate")}</button>
          <button type="button" onClick=${onClose}>${t("ui.cancel")}</button>
        </div>
      </form>
    <//>`;
}

/** @param {{isAdmin: boolean, eip: Eip, onClose: () => void, onDone: (e: Eip) => void}} props */
function BindDialog({ isAdmin, eip, onClose, onDone }) {
  const [instances, setInstances] = useState(/** @type {Instance[] | null} */ (null));
  const [loadError, setLoadError] = useState(/** @type {string | null} */ (null));
  const [instance, setInstance] = useState("");
  const { errors, busy, submit } = useForm();

  useEffect(() => {
    const q = isAdmin ? `?tenant=${encodeURIComponent(eip.tenant_id)}` : "";
    listAll(`/v1/instances${q}`).then(
      (all) => setInstances(/** @type {Instance[]} */ (all).filter((i) => i.state !== "deleting")),
      (err) => setLoadError(err instanceof Error ? err.message : String(err)),
    );
  }, [eip.id]);

  /** @param {Event} e */
  async function save(e) {
    e.preventDefault();
    const bound = await submit(["instance_id"], () =>
      call("POST", `/v1/eips/${encodeURIComponent(eip.id)}/bind`, { instance_id: instance }));
    if (bound) onDone(bound);
  }

  return html`
    <${Dialog} title=${t("network.bind.title")} onClose=${onClose} testid="bind-form">
      <form class="form" onSubmit=${save}>
        <p>${t("network.bind.text")} <span class="mono" data-raw>${eip.address}</span></p>
        ${loadError && html`<p class="error" role="alert" data-raw>${loadError}</p>`}
        <${Field} label=${t("network.eip.instance")} name="instance_id" error=${errors.instance_id}>
          <select value=${instance} onChange=${(/** @type {any} */ e) => setInstance(e.currentTarget.value)}>
            <option value="">${instances ? t("network.bind.choose") : t("network.bind.loading")}</option>
            ${(instances || []).map((i) => html`<option value=${i.id} data-raw>${`${i.name} (${i.id})`}</option>`)}
          </select>
        <//>
        ${instances && instances.length === 0 && html`<p class="empty">${t("network.bind.none")}</p>`}
        <${FormError} errors=${errors} />
        <div class="form-actions">
          <button type="submit" class="primary" disabled=${busy || !instance}>${t("network.eip.bind")}</button>
          <button type="button" onClick=${onClose}>${t("ui.cancel")}</button>
        </div>
      </form>
    <//>`;
}
