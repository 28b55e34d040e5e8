// A host's Info tab: every field GET /v1/hosts/{id} gives, allocation bars, a summary of its
// devices, the libvirt domains its agent reported (those no instance accounts for marked), and
// the actions its state allows (lock / unlock here; maintenance on its own screen).
import { useState } from "preact/hooks";
import { html } from "./html.js";
import { call } from "./api.js";
import { t } from "./i18n.js";
import { dateTime, gib } from "./format.js";
import { UsageBar } from "./usage_bar.js";
import { ConfirmBar } from "./host_batch.js";
import { useHostDevices } from "./host_devices_model.js";

/** @typedef {import("../types/api").components["schemas"]["HostDetail"]} HostDetailT */

/**
 * @param {{host: HostDetailT, feed: import("./events.js").ChangeFeed,
 *   onChanged: (h: any) => void}} props
 */
export function HostInfo({ host, feed, onChanged }) {
  const h = host;
  const [confirm, setConfirm] = useState(/** @type {"lock" | "unlock" | null} */ (null));
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState(/** @type {string | null} */ (null));
  const dev = useHostDevices(feed, h.id, ["usb", "gpus", "vgpus"]);

  /** @param {"lock" | "unlock"} action */
  async function act(action) {
    setConfirm(null);
    setBusy(true);
    setFailure(null);
    try {
      onChanged(await call("POST", `/v1/hosts/${encodeURIComponent(h.id)}/${action}`));
    } catch (err) {
      setFailure(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  const unknown = new Set(h.unknown_domains || []);
  /** @param {string} label @param {any} value @param {boolean} [raw] */
  const fact = (label, value, raw = true) => html`
    <dt>${label}</dt><dd data-raw=${raw ? "" : undefined}>${value === null || value === undefined || value === "" ? "—" : value}</dd>`;
  const usbHeld = dev.usb.filter((u) => u.state === "assigned").length;
  const vgpuHeld = dev.vgpus.filter((v) => v.state === "assigned").length;
  const gpuSliced = dev.gpus.filter((g) => g.state === "sliced").length;

  return html`
    <div class="hd-info">
      <div class="toolbar" role="toolbar" aria-label=${t("hd.actions")}>
        ${h.state === "available" && html`<button type="button" data-action="lock" disabled=${busy} onClick=${() => setConfirm("lock")}>${t("action.lock")}</button>`}
        ${h.state === "locked" && html`<button type="button" data-action="unlock" disabled=${busy} onClick=${() => setConfirm("unlock")}>${t("action.unlock")}</button>`}
        <a class="button-link" href=${`#/maintenance/${encodeURIComponent(h.id)}`} data-testid="hd-maintenance">${t("hd.maintenance")}</a>
      </div>
      ${confirm && html`<${ConfirmBar} action=${confirm} count=${1} onConfirm=${() => act(confirm)} onCancel=${() => setConfirm(null)} />`}
      ${failure && html`<p class="error" role="alert" data-raw>${failure}</p>`}
      <div class="hd-cards">
        <section class="card hd-card" aria-labelledby="hd-basic">
          <h2 id="hd-basic">${t("hd.basic")}</h2>
          <dl class="facts" data-testid="hd-facts">
            ${fact(t("hosts.col.id"), h.id)}
            ${fact(t("hd.f.hostname"), h.hostname)}
            ${fact(t("hosts.col.ip"), h.ip)}
            ${fact(t("hosts.col.cluster"), h.cluster_id)}
            ${fact(t("hosts.col.cpu"), h.cpu_model)}
            ${fact(t("hd.f.total_cores"), h.total_cores)}
            ${fact(t("hd.f.allocated_cores"), h.allocated_cores)}
            ${fact(t("hd.f.total_memory"), `${gib(h.total_memory_bytes)} GiB`)}
            ${fact(t("hd.f.allocated_memory"), `${gib(h.allocated_memory_bytes)} GiB`)}
            ${fact(t("hosts.col.updated"), dateTime(h.updated_at))}
            <dt>${t("hosts.col.state")}</dt><dd><span class=${`badge state-${h.state}`}>${t(/** @type {any} */ (`state.${h.state}`))}</span></dd>
            <dt>${t("hosts.col.agent")}</dt><dd><span class=${`badge agent-${h.agent}`}>${t(/** @type {any} */ (`agent.${h.agent}`))}</span></dd>
            ${fact(t("hd.f.last_seen"), dateTime(h.last_seen))}
            ${fact(t("hd.f.created_at"), dateTime(h.created_at))}
          </dl>
        </section>
        <section class="card hd-card" aria-labelledby="hd-alloc">
          <h2 id="hd-alloc">${t("hd.allocation")}</h2>
          <div class="hd-bar">
            <span>${t("hosts.col.cores")}</span>
            <${UsageBar} used=${h.allocated_cores} total=${h.total_cores} label=${t("hosts.col.cores")}
              text=${`${h.allocated_cores} / ${h.total_cores}`} />
          </div>
          <div class="hd-bar">
            <span>${t("hosts.col.memory")}</span>
            <${UsageBar} used=${h.allocated_memory_bytes} total=${h.total_memory_bytes} label=${t("hosts.col.memory")}
              text=${t("unit.gib_of", { used: gib(h.allocated_memory_bytes), total: gib(h.total_memory_bytes) })} />
          </div>
          <h2 id="hd-devsum">${t("hd.devices")}</h2>
          <dl class="facts" data-testid="hd-devices">
            <dt>${t("hd.tab.usb")}</dt><dd>${t("hd.sum.usb", { n: dev.usb.length, held: usbHeld })}</dd>
            <dt>${t("hd.gpus")}</dt><dd>${t("hd.sum.gpus", { n: dev.gpus.length, sliced: gpuSliced })}</dd>
            <dt>${t("hd.vgpus")}</dt><dd>${t("hd.sum.vgpus", { n: dev.vgpus.length, held: vgpuHeld })}</dd>
          </dl>
        </section>
        <section class="card hd-card" aria-labelledby="hd-agent">
          <h2 id="hd-agent">${t("hd.agent")}</h2>
          <dl class="facts">
            ${fact(t("hd.f.agent_version"), h.agent_version)}
            ${fact(t("hd.f.agent_api"), h.agent_api)}
            ${fact(t("hd.f.cert_expires"), dateTime(h.agent_cert_expires_at))}
            ${fact(t("hd.f.hypervisor"), h.hypervisor)}
            ${fact(t("hd.f.libvirt_uri"), h.libvirt_uri)}
          </dl>
        </section>
      </div>
      <section class="card hd-card" aria-labelledby="hd-domains">
        <h2 id="hd-domains">${t("hd.domains")}</h2>
        <p class="hint">${t("hd.domains_hint")}</p>
        ${unknown.size > 0 && html`
          <p data-testid="hd-unknown">${t("hd.unknown_count", { n: unknown.size })}</p>`}
        ${h.domains.length === 0
          ? html`<p class="empty">${t("hd.no_domains")}</p>`
          : html`
            <div class="hd-scroll" tabindex="0">
              <table class="hd-table" data-testid="hd-domain-table">
                <thead><tr>
                  <th scope="col">${t("hd.d.name")}</th><th scope="col">${t("hd.d.uuid")}</th>
                  <th scope="col">${t("hd.d.state")}</th><th scope="col">${t("hd.d.vcpus")}</th>
                  <th scope="col">${t("hd.d.memory")}</th><th scope="col">${t("hd.d.known")}</th>
                </tr></thead>
                <tbody>
                  ${h.domains.map((d) => html`
                    <tr key=${d.uuid} data-domain=${d.name} data-unknown=${unknown.has(d.name) ? "1" : "0"}>
                      <td class="mono" data-raw>${d.name}</td>
                      <td class="mono" data-raw>${d.uuid}</td>
                      <td data-raw>${d.state}</td>
                      <td data-raw>${d.vcpus}</td>
                      <td data-raw>${`${Math.round(d.memory_bytes / 2 ** 20)} MiB`}</td>
                      <td>${unknown.has(d.name) ? html`<span class="badge hd-unknown">${t("hd.unknown")}</span>` : t("hd.known")}</td>
                    </tr>`)}
                </tbody>
              </table>
            </div>`}
      </section>
    </div>`;
}
