// A host's USB tab: its USB devices with the seed's fields; a free one is assigned to an
// instance on this host (a dialog), an assigned one released. The list is read again after
// each action.
import { useState } from "preact/hooks";
import { html } from "./html.js";
import { call } from "./api.js";
import { t } from "./i18n.js";
import { Dialog } from "./ui/dialog.js";
import { Field, FormError, useForm } from "./ui/form.js";
import { useHostDevices } from "./host_devices_model.js";
import { useHostInstances } from "./host_instances.js";

/** @typedef {import("./host_devices_model.js").UsbDevice} UsbDevice */

/**
 * @param {{host: string, device: UsbDevice, feed: import("./events.js").ChangeFeed,
 *   onDone: () => void, onClose: () => void}} props
 */
function AssignDialog({ host, device, feed, onDone, onClose }) {
  const { items, loaded } = useHostInstances(feed, host);
  const [instance, setInstance] = useState("");
  const form = useForm();
  async function submit(/** @type {Event} */ e) {
    e.preventDefault();
    const ok = await form.submit(["instance_id"], () =>
      call("POST", `/v1/hosts/${encodeURIComponent(host)}/usb/${encodeURIComponent(device.id)}/assign`, { instance_id: instance }));
    if (ok) onDone();
  }
  return html`
    <${Dialog} title=${t("hd.u.assign_title")} onClose=${onClose} testid="usb-assign">
      <form class="form" onSubmit=${submit}>
        <p>${t("hd.u.assign_text")} <span class="mono" data-raw>${device.name} (${device.id})</span></p>
        <${Field} label=${t("hd.u.instance")} name="instance_id" error=${form.errors.instance_id}
          hint=${loaded && items.length === 0 ? t("hd.u.no_instances") : t("hd.u.instance_hint")}>
          <select value=${instance} onChange=${(/** @type {any} */ e) => setInstance(e.currentTarget.value)} required>
            <option value="">${t("hd.u.choose")}</option>
            ${items.map((i) => html`<option value=${i.id} data-raw>${i.name} · ${i.id} (${i.state})</option>`)}
          </select>
        <//>
        <${FormError} errors=${form.errors} />
        <div class="form-actions">
          <button type="submit" class="primary" data-testid="usb-assign-submit" disabled=${!instance || form.busy}>${t("hd.u.assign")}</button>
          <button type="button" onClick=${onClose}>${t("ui.cancel")}</button>
        </div>
      </form>
    <//>`;
}

/** @param {{id: string, feed: import("./events.js").ChangeFeed}} props */
export function HostUsb({ id, feed }) {
  const dev = useHostDevices(feed, id, ["usb"]);
  const [assigning, setAssigning] = useState(/** @type {UsbDevice | null} */ (null));
  const [busy, setBusy] = useState("");
  const [failure, setFailure] = useState(/** @type {string | null} */ (null));

  /** @param {UsbDevice} d */
  async function release(d) {
    setBusy(d.id);
    setFailure(null);
    try {
      await call("POST", `/v1/hosts/${encodeURIComponent(id)}/usb/${encodeURIComponent(d.id)}/release`);
    } catch (err) {
      setFailure(err instanceof Error ? err.message : String(err));
    }
    setBusy("");
    dev.reload();
  }

  return html`
    <div class="hd-usb">
      ${(dev.error || failure) && html`<p class="error" role="alert" data-raw>${failure || dev.error}</p>`}
      <div class="hd-scroll" tabindex="0">
        <table class="hd-table" aria-label=${t("hd.tab.usb")}>
          <thead><tr>
            <th scope="col">${t("hd.u.name")}</th><th scope="col">${t("hd.u.id")}</th>
            <th scope="col">${t("hosts.col.state")}</th><th scope="col">${t("hd.u.vendor")}</th>
            <th scope="col">${t("hd.u.type")}</th><th scope="col">${t("hd.u.serial")}</th>
            <th scope="col">${t("hd.u.instance")}</th><th scope="col">${t("hd.u.version")}</th>
            <th scope="col">${t("hd.i.tenant")}</th><th scope="col">${t("hosts.col.actions")}</th>
          </tr></thead>
          <tbody>
            ${dev.usb.map((d) => html`
              <tr key=${d.id} data-usb=${d.id} data-state=${d.state}>
                <td data-raw>${d.name}</td>
                <td class="mono" data-raw>${d.id} · ${d.usb_id}</td>
                <td><span class=${`badge dev-${d.state}`}>${t(/** @type {any} */ (`hd.dev.${d.state}`))}</span></td>
                <td data-raw>${d.vendor}</td>
                <td data-raw>${d.type}</td>
                <td class="mono" data-raw>${d.serial || "—"}</td>
                <td class="mono" data-raw>${d.instance_id ? html`<a href=${`#/instances/${encodeURIComponent(d.instance_id)}`}>${d.instance_id}</a>` : "—"}</td>
                <td data-raw>${d.usb_version}</td>
                <td data-raw>${d.tenant_email || "—"}</td>
                <td>
                  ${d.state === "free"
                    ? html`<button type="button" class="link" data-action="assign" onClick=${() => setAssigning(d)}
                        aria-label=${t("hd.u.assign_one", { id: d.id })}>${t("hd.u.assign")}</button>`
                    : html`<button type="button" class="link" data-action="release" disabled=${busy === d.id} onClick=${() => release(d)}
                        aria-label=${t("hd.u.release_one", { id: d.id })}>${t("hd.u.release")}</button>`}
                </td>
              </tr>`)}
          </tbody>
        </table>
        ${dev.loaded && dev.usb.length === 0 && html`<p class="empty">${t("hd.u.none")}</p>`}
      </div>
      ${assigning && html`<${AssignDialog} host=${id} device=${assigning} feed=${feed}
        onClose=${() => setAssigning(null)} onDone=${() => {
          setAssigning(null);
          dev.reload();
        }} />`}
    </div>`;
}
