// A host's GPU tab: its physical GPUs (name, spec, PCI address, type, state, the vGPU types it
// offers and how many of each fit now), slicing one by a type, restoring a sliced one (refused
// while a vGPU of it is attached: the refusal names the instances holding them), and its vGPUs.
import { useState } from "preact/hooks";
import { html } from "./html.js";
import { call } from "./api.js";
import { t } from "./i18n.js";
import { gib } from "./format.js";
import { Dialog } from "./ui/dialog.js";
import { Field, FormError, useForm } from "./ui/form.js";
import { useHostDevices } from "./host_devices_model.js";

/** @typedef {import("./host_devices_model.js").Gpu} Gpu */
/** @typedef {import("./host_devices_model.js").Vgpu} Vgpu */

/** @param {{host: string, gpu: Gpu, onDone: () => void, onClose: () => void}} props */
function SliceDialog({ host, gpu, onDone, onClose }) {
  const types = gpu.vgpu_types;
  const [type, setType] = useState(types.find((x) => x.available > 0)?.id || (types[0] ? types[0].id : ""));
  const [count, setCount] = useState("1");
  const form = useForm();
  const chosen = types.find((x) => x.id === type);
  async function submit(/** @type {Event} */ e) {
    e.preventDefault();
    const ok = await form.submit(["type", "count"], () =>
      call("POST", `/v1/hosts/${encodeURIComponent(host)}/gpus/${encodeURIComponent(gpu.address)}/slice`,
        { type, count: Number(count) }));
    if (ok) onDone();
  }
  return html`
    <${Dialog} title=${t("hd.g.slice_title")} onClose=${onClose} testid="gpu-slice">
      <form class="form" onSubmit=${submit}>
        <p>${t("hd.g.slice_text")} <span class="mono" data-raw>${gpu.name} (${gpu.address})</span></p>
        <${Field} label=${t("hd.g.vgpu_type")} name="type" error=${form.errors.type}>
          <select value=${type} onChange=${(/** @type {any} */ e) => setType(e.currentTarget.value)}>
            ${types.map((x) => html`<option value=${x.id} data-raw>${t("hd.g.type_option", { name: x.name, id: x.id, n: x.available })}</option>`)}
          </select>
        <//>
        ${chosen && html`<p class="hint" data-testid="gpu-fit">${t("hd.g.fit", { n: chosen.available, name: chosen.name })}</p>`}
        <${Field} label=${t("hd.g.count")} name="count" error=${form.errors.count}>
          <input type="number" min="1" max=${chosen ? Math.max(1, chosen.available) : undefined} step="1" value=${count}
            onInput=${(/** @type {any} */ e) => setCount(e.currentTarget.value)} required />
        <//>
        <${FormError} errors=${form.errors} />
        <div class="form-actions">
          <button type="submit" class="primary" data-testid="gpu-slice-submit" disabled=${!type || form.busy}>${t("hd.g.slice")}</button>
          <button type="button" onClick=${onClose}>${t("ui.cancel")}</button>
        </div>
      </form>
    <//>`;
}

/** @param {Gpu} g */
function spec(g) {
  return g.memory_bytes ? t("hd.g.spec", { mem: gib(g.memory_bytes) }) : "—";
}

/** @param {{id: string, feed: import("./events.js").ChangeFeed}} props */
export function HostGpus({ id, feed }) {
  const dev = useHostDevices(feed, id, ["gpus", "vgpus"]);
  const [slicing, setSlicing] = useState(/** @type {Gpu | null} */ (null));
  const [busy, setBusy] = useState("");
  /** @type {[{address: string, message: string, holders: Vgpu[]} | null, any]} */
  const [refused, setRefused] = useState(/** @type {{address: string, message: string, holders: Vgpu[]} | null} */ (null));
  const [done, setDone] = useState(/** @type {string | null} */ (null));

  /** @param {Gpu} g */
  async function restore(g) {
    setBusy(g.address);
    setRefused(null);
    setDone(null);
    try {
      await call("POST", `/v1/hosts/${encodeURIComponent(id)}/gpus/${encodeURIComponent(g.address)}/restore`);
      setDone(g.address);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      // The holders: the vGPUs of this GPU attached to an instance, as the host lists them now.
      /** @type {Vgpu[]} */
      let holders = [];
      try {
        const v = await call("GET", `/v1/hosts/${encodeURIComponent(id)}/vgpus`);
        holders = (v.items || []).filter((/** @type {Vgpu} */ x) => x.parent === g.address && x.instance_id);
      } catch {
        // The message names them still.
      }
      setRefused({ address: g.address, message, holders });
    }
    setBusy("");
    dev.reload();
  }

  return html`
    <div class="hd-gpus">
      ${dev.error && html`<p class="error" role="alert" data-raw>${dev.error}</p>`}
      ${done && html`<p class="ok" role="status" data-testid="gpu-restored">${t("hd.g.restored")} <span class="mono" data-raw>${done}</span></p>`}
      ${refused && html`
        <div class="confirm hd-refused" role="alert" data-testid="gpu-refused" data-address=${refused.address}>
          <div>
            <p><strong>${t("hd.g.refused")}</strong></p>
            <p class="mono" data-raw>${refused.message}</p>
            ${refused.holders.length > 0 && html`
              <p>${t("hd.g.holders")}</p>
              <ul>${refused.holders.map((v) => html`
                <li data-holder=${v.instance_id} data-raw>
                  <a href=${`#/instances/${encodeURIComponent(v.instance_id || "")}`}>${v.instance_id}</a>
                  ${v.tenant_email ? ` · ${v.tenant_email}` : ""} · ${v.type_name} · ${v.id}
                </li>`)}</ul>`}
          </div>
          <button type="button" onClick=${() => setRefused(null)}>${t("ui.close")}</button>
        </div>`}
      <h2>${t("hd.gpus")}</h2>
      <div class="hd-scroll" tabindex="0">
        <table class="hd-table" aria-label=${t("hd.gpus")}>
          <thead><tr>
            <th scope="col">${t("hd.g.name")}</th><th scope="col">${t("hd.g.spec_col")}</th>
            <th scope="col">${t("hd.g.address")}</th><th scope="col">${t("hd.g.type")}</th>
            <th scope="col">${t("hosts.col.state")}</th><th scope="col">${t("hd.g.types")}</th>
            <th scope="col">${t("hd.u.instance")}</th><th scope="col">${t("hosts.col.actions")}</th>
          </tr></thead>
          <tbody>
            ${dev.gpus.map((g) => html`
              <tr key=${g.address} data-gpu=${g.address} data-state=${g.state}>
                <td data-raw>${g.name}</td>
                <td>${spec(g)} <span class="mono" data-raw>${g.pci_id}</span></td>
                <td class="mono" data-raw>${g.address}</td>
                <td>${t(/** @type {any} */ (`hd.gkind.${g.type}`))}${g.console ? html` <span class="badge">${t("hd.g.console")}</span>` : ""}</td>
                <td><span class=${`badge dev-${g.state}`}>${t(/** @type {any} */ (`hd.gstate.${g.state}`))}</span></td>
                <td>
                  ${g.vgpu_types.length === 0 ? "—" : html`<ul class="hd-types">${g.vgpu_types.map((x) => html`
                    <li data-vgpu-type=${x.id} data-available=${x.available}>${t("hd.g.type_fit", { name: x.name, n: x.available })}</li>`)}</ul>`}
                </td>
                <td class="mono" data-raw>${g.instance_id || "—"}</td>
                <td>
                  ${g.type !== "passthrough" && !g.instance_id && !g.console && html`
                    <button type="button" class="link" data-action="slice" onClick=${() => setSlicing(g)}
                      aria-label=${t("hd.g.slice_one", { address: g.address })}>${t("hd.g.slice")}</button>`}
                  ${g.state === "sliced" && html`
                    <button type="button" class="link" data-action="restore" disabled=${busy === g.address} onClick=${() => restore(g)}
                      aria-label=${t("hd.g.restore_one", { address: g.address })}>${t("hd.g.restore")}</button>`}
                </td>
              </tr>`)}
          </tbody>
        </table>
        ${dev.loaded && dev.gpus.length === 0 && html`<p class="empty">${t("hd.g.none")}</p>`}
      </div>
      <h2>${t("hd.vgpus")}</h2>
      <div class="hd-scroll" tabindex="0">
        <table class="hd-table" aria-label=${t("hd.vgpus")}>
          <thead><tr>
            <th scope="col">${t("hd.v.name")}</th><th scope="col">${t("hd.v.id")}</th>
            <th scope="col">${t("hd.g.type")}</th><th scope="col">${t("hd.v.parent")}</th>
            <th scope="col">${t("hd.u.instance")}</th><th scope="col">${t("hd.i.tenant")}</th>
            <th scope="col">${t("hosts.col.state")}</th>
          </tr></thead>
          <tbody>
            ${dev.vgpus.map((v) => html`
              <tr key=${v.id} data-vgpu=${v.id} data-parent=${v.parent} data-state=${v.state}>
                <td data-raw>${v.type_name} (${v.type_id})</td>
                <td class="mono" data-raw>${v.id}</td>
                <td>${t(/** @type {any} */ (`hd.vkind.${v.kind}`))}</td>
                <td class="mono" data-raw>${v.parent}</td>
                <td class="mono" data-raw>${v.instance_id || "—"}</td>
                <td data-raw>${v.tenant_email || "—"}</td>
                <td><span class=${`badge dev-${v.state}`}>${t(/** @type {any} */ (`hd.dev.${v.state}`))}</span></td>
              </tr>`)}
          </tbody>
        </table>
        ${dev.loaded && dev.vgpus.length === 0 && html`<p class="empty">${t("hd.v.none")}</p>`}
      </div>
      ${slicing && html`<${SliceDialog} host=${id} gpu=${slicing} onClose=${() => setSlicing(null)} onDone=${() => {
        setSlicing(null);
        dev.reload();
      }} />`}
    </div>`;
}
