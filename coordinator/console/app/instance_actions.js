// The dialogs of an instance's actions: migrate (admins: a target picked from the hosts of its
// cluster that fit it, or the scheduler's pick), export as an image, delete (typed), and the
// plain start / stop / reboot.
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { t } from "./i18n.js";
import { call, listAll } from "./api.js";
import { gib } from "./format.js";
import { Dialog, TypedConfirm } from "./ui/dialog.js";
import { Field, FormError, useForm } from "./ui/form.js";

/** @typedef {import("./instances_model.js").Instance} Instance */
/** @typedef {import("./instances_model.js").Host} Host */
/** @typedef {import("./instances_model.js").Image} Image */

/**
 * Start, stop or reboot: answered at once with the instance (its state now the job's).
 * @param {"start" | "stop" | "reboot"} action
 * @param {string} id
 * @returns {Promise<Instance>}
 */
export function runAction(action, id) {
  const path = `/v1/instances/${encodeURIComponent(id)}/${action}`;
  return call("POST", path, action === "stop" ? {} : undefined);
}

/**
 * Whether `h` can take `inst` now: same cluster, available, its agent online, and room for
 * its cores and memory (without the scheduler's overcommit, so a host listed surely fits).
 * @param {Host} h @param {Instance} inst @param {string | null} cluster
 */
export function fits(h, inst, cluster) {
  return h.id !== inst.host_id && h.cluster_id === cluster && h.state === "available" && h.agent === "online"
    && h.total_cores - h.allocated_cores >= inst.vcpus
    && h.total_memory_bytes - h.allocated_memory_bytes >= inst.memory_bytes;
}

/** @param {{inst: Instance, onClose: () => void, onDone: (i: Instance) => void}} props */
export function MigrateDialog({ inst, onClose, onDone }) {
  const { errors, busy, submit } = useForm();
  const [hosts, setHosts] = useState(/** @type {Host[] | null} */ (null));
  const [cluster, setCluster] = useState(/** @type {string | null} */ (null));
  const [target, setTarget] = useState("");
  const [loadError, setLoadError] = useState(/** @type {string | null} */ (null));

  useEffect(() => {
    listAll("/v1/hosts")
      .then((/** @type {Host[]} */ all) => {
        const source = all.find((h) => h.id === inst.host_id);
        setCluster(source ? source.cluster_id : null);
        setHosts(all);
      })
      .catch((err) => setLoadError(err.message));
  }, [inst.id]);

  const candidates = (hosts || []).filter((h) => fits(h, inst, cluster));

  async function migrate(/** @type {Event} */ e) {
    e.preventDefault();
    const body = target ? { target_host: target } : {};
    const done = await submit(["target_host"], () => call("POST", `/v1/instances/${encodeURIComponent(inst.id)}/migrate`, body));
    if (done) onDone(done);
  }

  return html`
    <${Dialog} title=${t("inst.migrate.title")} onClose=${onClose} testid="migrate-dialog">
      <form class="form" onSubmit=${migrate}>
        <p>${t("inst.migrate.text")}</p>
        ${loadError && html`<p class="error" role="alert" data-raw>${loadError}</p>`}
        <fieldset class="inst-targets" data-field="target_host" aria-describedby=${errors.target_host ? "target-error" : undefined}>
          <legend>${t("inst.migrate.target")}</legend>
          <label class="inst-target">
            <input type="radio" name="target" value="" checked=${target === ""} onChange=${() => setTarget("")} />
            <span>${t("inst.migrate.auto")}</span>
          </label>
          ${candidates.map((h) => html`
            <label class="inst-target" data-target=${h.id}>
              <input type="radio" name="target" value=${h.id} checked=${target === h.id} onChange=${() => setTarget(h.id)} />
              <span class="mono" data-raw>${h.id}</span>
              <span class="sub" data-raw>${h.ip}</span>
              <span class="sub">${t("inst.migrate.free", {
                cores: h.total_cores - h.allocated_cores,
                memory: gib(h.total_memory_bytes - h.allocated_memory_bytes),
              })}</span>
            </label>`)}
          ${hosts && candidates.length === 0 && html`<p class="hint" data-testid="no-target">${t("inst.migrate.none")}</p>`}
          ${errors.target_host && html`<p class="field-error" id="target-error" role="alert" data-raw>${errors.target_host}</p>`}
        </fieldset>
        <${FormError} errors=${errors} />
        <div class="form-actions">
          <button type="submit" class="primary" disabled=${busy || !hosts}>${t("inst.action.migrate")}</button>
          <button type="button" onClick=${onClose}>${t("ui.cancel")}</button>
        </div>
      </form>
    <//>`;
}

/** @param {{inst: Instance, onClose: () => void, onDone: (image: Image) => void}} props */
export function ExportDialog({ inst, onClose, onDone }) {
  const { errors, busy, submit } = useForm();
  const [name, setName] = useState(`${inst.name}-image`);
  async function run(/** @type {Event} */ e) {
    e.preventDefault();
    const image = await submit(["name"], () =>
      call("POST", `/v1/instances/${encodeURIComponent(inst.id)}/export-image`, { name: name.trim() }));
    if (image) onDone(image);
  }
  return html`
    <${Dialog} title=${t("inst.export.title")} onClose=${onClose} testid="export-dialog">
      <form class="form" onSubmit=${run} novalidate>
        <p>${t("inst.export.text")}</p>
        <${Field} label=${t("inst.export.name")} name="name" error=${errors.name}>
          <input autocomplete="off" value=${name} onInput=${(/** @type {any} */ e) => setName(e.currentTarget.value)} />
        <//>
        <${FormError} errors=${errors} />
        <div class="form-actions">
          <button type="submit" class="primary" disabled=${busy}>${t("inst.action.export")}</button>
          <button type="button" onClick=${onClose}>${t("ui.cancel")}</button>
        </div>
      </form>
    <//>`;
}

/** @param {{inst: Instance, onClose: () => void, onDone: (i: Instance) => void}} props */
export function DeleteDialog({ inst, onClose, onDone }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(/** @type {string | null} */ (null));
  async function run() {
    setBusy(true);
    setError(null);
    try {
      onDone(await call("DELETE", `/v1/instances/${encodeURIComponent(inst.id)}`));
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }
  return html`<${TypedConfirm} title=${t("inst.delete.title")} text=${t("inst.delete.text")}
    expect=${inst.name} action=${t("inst.action.delete")} busy=${busy} error=${error}
    onConfirm=${run} onCancel=${onClose} />`;
}
