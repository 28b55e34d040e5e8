// The segments list: the seed's ten fields (ID, name, IP version, CIDR, gateway, NIC, VLAN,
// tenant permission, state, updated) plus the usage, and for admins add, edit, permissions
// and delete.
import { useState } from "preact/hooks";
import { html } from "./html.js";
import { t } from "./i18n.js";
import { call } from "./api.js";
import { shortTime, dateTime } from "./format.js";
import { UsageBar } from "./usage_bar.js";
import { TypedConfirm } from "./ui/dialog.js";
import { SegmentForm } from "./network_segment_form.js";
import { PermissionDialog } from "./network_permission.js";

/** @typedef {import("../types/api").components["schemas"]["Segment"]} Segment */

/**
 * @param {{isAdmin: boolean, list: {items: Segment[], loaded: boolean, error: string | null,
 *   put: (s: Segment) => void, drop: (id: string) => void}}} props
 */
export function SegmentList({ isAdmin, list }) {
  /** @type {[{kind: "new" | "edit" | "permission" | "delete", segment?: Segment} | null, (d: any) => void]} */
  const [open, setOpen] = useState(/** @type {any} */ (null));
  const [deleteError, setDeleteError] = useState(/** @type {string | null} */ (null));
  const [busy, setBusy] = useState(false);
  const segments = [...list.items].sort((a, b) => a.name.localeCompare(b.name));

  /** @param {Segment} s */
  async function remove(s) {
    setBusy(true);
    try {
      await call("DELETE", `/v1/segments/${encodeURIComponent(s.id)}`);
      list.drop(s.id);
      setOpen(null);
    } catch (err) {
      setDeleteError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  return html`
    <div class="net-segments">
      <div class="toolbar">
        <span class="count" data-testid="segment-count">${t("network.segments.count", { n: segments.length })}</span>
        ${isAdmin && html`<button type="button" class="primary" data-testid="segment-add"
          onClick=${() => setOpen({ kind: "new" })}>${t("network.segments.add")}</button>`}
      </div>
      ${list.error && html`<p class="error" role="alert" data-raw>${list.error}</p>`}
      <div class="net-table-wrap" tabindex="0" role="region" aria-label=${t("network.segments.title")}>
        <table class="net-table cards">
          <thead>
            <tr>
              <th scope="col">${t("network.col.id")}</th>
              <th scope="col">${t("network.col.name")}</th>
              <th scope="col">${t("network.col.version")}</th>
              <th scope="col">${t("network.col.cidr")}</th>
              <th scope="col">${t("network.col.gateway")}</th>
              <th scope="col">${t("network.col.nic")}</th>
              <th scope="col">${t("network.col.vlan")}</th>
              <th scope="col">${t("network.col.permission")}</th>
              <th scope="col">${t("network.col.state")}</th>
              <th scope="col">${t("network.col.updated")}</th>
              <th scope="col">${t("network.col.usage")}</th>
              ${isAdmin && html`<th scope="col">${t("network.col.actions")}</th>`}
            </tr>
          </thead>
          <tbody>
            ${segments.map((s) => html`
              <tr key=${s.id} data-segment-id=${s.id} data-state=${s.state}>
                <td data-label=${t("network.col.id")} class="mono" data-raw>${s.id}</td>
                <td data-label=${t("network.col.name")} data-raw>${s.name}</td>
                <td data-label=${t("network.col.version")} data-raw>${`IPv${s.ip_version}`}</td>
                <td data-label=${t("network.col.cidr")} class="mono" data-raw>${s.cidr}</td>
                <td data-label=${t("network.col.gateway")} class="mono" data-raw>${s.gateway}</td>
                <td data-label=${t("network.col.nic")} class="mono" data-raw>${s.nic}</td>
                <td data-label=${t("network.col.vlan")}>${s.vlan == null ? t("network.vlan.none") : html`<span data-raw>${s.vlan}</span>`}</td>
                <td data-label=${t("network.col.permission")} data-testid="permission">
                  ${s.permission.all_tenants
                    ? t("network.permission.all")
                    : s.permission.tenants.length === 0
                      ? t("network.permission.nobody")
                      : html`<span data-raw>${s.permission.tenants.map((p) => p.email).join(", ")}</span>`}
                </td>
                <td data-label=${t("network.col.state")}><span class=${`badge seg-${s.state}`}>${t(/** @type {any} */ (`network.state.${s.state}`))}</span></td>
                <td data-label=${t("network.col.updated")} data-raw title=${dateTime(s.updated_at)}>${shortTime(s.updated_at)}</td>
                <td data-label=${t("network.col.usage")} class="net-usage">
                  <${UsageBar} used=${s.allocated} total=${Number(s.usable)} label=${t("network.col.usage")}
                    text=${`${s.allocated} / ${s.usable}`} />
                </td>
                ${isAdmin && html`
                  <td data-label=${t("network.col.actions")}><div class="net-actions">
                    <button type="button" class="link" data-action="edit" onClick=${() => setOpen({ kind: "edit", segment: s })}>${t("network.action.edit")}</button>
                    <button type="button" class="link" data-action="permission" onClick=${() => setOpen({ kind: "permission", segment: s })}>${t("network.action.permission")}</button>
                    <button type="button" class="link" data-action="delete" onClick=${() => { setDeleteError(null); setOpen({ kind: "delete", segment: s }); }}>${t("network.action.delete")}</button>
                  </div></td>`}
              </tr>`)}
          </tbody>
        </table>
        ${list.loaded && segments.length === 0 && html`<p class="empty">${t("network.segments.empty")}</p>`}
      </div>
      ${open && (open.kind === "new" || open.kind === "edit") && html`
        <${SegmentForm} segment=${open.segment} onClose=${() => setOpen(null)}
          onSaved=${(/** @type {Segment} */ s) => { list.put(s); setOpen(null); }} />`}
      ${open && open.kind === "permission" && open.segment && html`
        <${PermissionDialog} segment=${open.segment} onClose=${() => setOpen(null)}
          onSaved=${(/** @type {Segment} */ s) => { list.put(s); setOpen(null); }} />`}
      ${open && open.kind === "delete" && open.segment && html`
        <${TypedConfirm} title=${t("network.delete.title")} text=${t("network.delete.text")}
          expect=${open.segment.name} action=${t("network.action.delete")} busy=${busy} error=${deleteError}
          onConfirm=${() => open.segment && remove(open.segment)} onCancel=${() => setOpen(null)} />`}
    </div>`;
}
