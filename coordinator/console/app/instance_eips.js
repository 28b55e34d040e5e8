// An instance's EIPs: those bound to it (unbind), and binding one of its tenant's free EIPs.
// Kept current from the change feed's `eip` events.
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { t } from "./i18n.js";
import { call, listAll } from "./api.js";
import { Field, FormError, useForm } from "./ui/form.js";

/** @typedef {import("./instances_model.js").Eip} Eip */
/** @typedef {import("./instances_model.js").Instance} Instance */

/**
 * @param {{inst: Instance, isAdmin: boolean, feed: import("./events.js").ChangeFeed}} props
 */
export function InstanceEips({ inst, isAdmin, feed }) {
  const [eips, setEips] = useState(/** @type {Eip[] | null} */ (null));
  const [loadError, setLoadError] = useState(/** @type {string | null} */ (null));
  const [chosen, setChosen] = useState("");
  const { errors, busy, submit } = useForm();

  useEffect(() => {
    let alive = true;
    const path = isAdmin ? `/v1/eips?tenant=${encodeURIComponent(inst.tenant_id)}` : "/v1/eips";
    async function load() {
      try {
        /** @type {Eip[]} */
        const all = await listAll(path);
        if (alive) {
          setEips(all);
          setLoadError(null);
        }
      } catch (err) {
        if (alive) setLoadError(err instanceof Error ? err.message : String(err));
      }
    }
    load();
    const off = feed.onEvent((e) => {
      if (e.type === "eip") load();
    });
    const offReload = feed.onReload(load);
    return () => {
      alive = false;
      off();
      offReload();
    };
  }, [feed, inst.id, inst.tenant_id, isAdmin]);

  const bound = (eips || []).filter((e) => e.instance_id === inst.id);
  const free = (eips || []).filter((e) => e.state === "allocated" && !e.instance_id);

  /** @param {Eip} e */
  function patch(e) {
    setEips((list) => (list || []).map((x) => (x.id === e.id ? e : x)));
  }

  async function bind(/** @type {Event} */ ev) {
    ev.preventDefault();
    const id = chosen;
    const done = await submit(["instance_id"], () =>
      call("POST", `/v1/eips/${encodeURIComponent(id)}/bind`, { instance_id: inst.id }));
    if (done) {
      patch(done);
      setChosen("");
    }
  }

  /** @param {string} id */
  async function unbind(id) {
    const done = await submit([], () => call("POST", `/v1/eips/${encodeURIComponent(id)}/unbind`));
    if (done) patch(done);
  }

  return html`
    <section class="card inst-eips" aria-labelledby="inst-eips-title" data-testid="instance-eips">
      <h2 id="inst-eips-title">${t("inst.eips.title")}</h2>
      ${loadError && html`<p class="error" role="alert" data-raw>${loadError}</p>`}
      ${eips && bound.length === 0 && html`<p class="empty">${t("inst.eips.none")}</p>`}
      ${bound.length > 0 && html`
        <ul class="inst-eip-list">
          ${bound.map((e) => html`
            <li data-eip=${e.id} data-address=${e.address}>
              <span class="mono" data-raw>${e.address}</span>
              <span class="sub" data-raw>${e.segment_name}</span>
              <button type="button" class="link" disabled=${busy} onClick=${() => unbind(e.id)}
                aria-label=${t("inst.eips.unbind_one", { address: e.address })}>${t("inst.eips.unbind")}</button>
            </li>`)}
        </ul>`}
      <form class="inst-eip-bind" onSubmit=${bind}>
        <${Field} label=${t("inst.eips.choose")} name="instance_id" error=${errors.instance_id}
          hint=${eips && free.length === 0 ? t("inst.eips.no_free") : undefined}>
          <select value=${chosen} onChange=${(/** @type {any} */ e) => setChosen(e.currentTarget.value)}>
            <option value="">${t("inst.field.choose")}</option>
            ${free.map((e) => html`<option value=${e.id} data-raw>${e.address} · ${e.segment_name}</option>`)}
          </select>
        <//>
        <button type="submit" disabled=${busy || !chosen}>${t("inst.eips.bind")}</button>
      </form>
      <${FormError} errors=${errors} />
    </section>`;
}
