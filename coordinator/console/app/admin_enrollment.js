// Enrollment tokens: a one-time token for a new host, shown once with the command that
// enrolls the host's agent (`plinth-agent enroll`), ready to copy. The coordinator's address
// in the command is the one this page was served from.
import { useState } from "preact/hooks";
import { html } from "./html.js";
import { t } from "./i18n.js";
import { call } from "./api.js";
import { dateTime } from "./format.js";
import { Field, FormError, useForm } from "./ui/form.js";
import { CopyButton } from "./ui/copy.js";
import { useClusters } from "./clusters_model.js";

/** @typedef {import("../types/api").components["schemas"]["EnrollmentToken"]} EnrollmentToken */

/** The agent's enroll command for `token` into `cluster`. */
/** @param {EnrollmentToken} token @param {string} cluster */
export function enrollCommand(token, cluster) {
  return `plinth-agent enroll --coordinator ${location.origin} --token ${token.token} --ca-hash ${token.ca_hash} --cluster ${cluster || "<cluster>"}`;
}

export function EnrollmentTab() {
  const { clusters } = useClusters();
  const [v, setV] = useState({ description: "", ttl: "1h", cluster: "" });
  const [made, setMade] = useState(/** @type {EnrollmentToken | null} */ (null));
  const { errors, busy, submit } = useForm();
  const set = (/** @type {string} */ f, /** @type {string} */ value) => setV({ ...v, [f]: value });
  const cluster = v.cluster || (clusters[0] ? clusters[0].id : "");

  /** @param {Event} e */
  async function save(e) {
    e.preventDefault();
    setMade(null);
    const tok = await submit(["description", "ttl"], () => call("POST", "/v1/enrollment-tokens", {
      description: v.description.trim(),
      ttl: v.ttl.trim(),
    }));
    if (tok) setMade(tok);
  }

  return html`
    <div class="admin-enrollment">
      <p class="hint">${t("admin.enroll.intro")}</p>
      <form class="form admin-inline-form" onSubmit=${save} data-testid="enrollment-form">
        <${Field} label=${t("admin.enroll.description")} name="description" error=${errors.description}>
          <input autocomplete="off" value=${v.description} onInput=${(/** @type {any} */ e) => set("description", e.currentTarget.value)} />
        <//>
        <${Field} label=${t("admin.enroll.ttl")} name="ttl" error=${errors.ttl} hint=${t("admin.enroll.ttl_hint")}>
          <input autocomplete="off" value=${v.ttl} onInput=${(/** @type {any} */ e) => set("ttl", e.currentTarget.value)} />
        <//>
        <${Field} label=${t("admin.enroll.cluster")} name="cluster" hint=${t("admin.enroll.cluster_hint")}>
          <select value=${cluster} onChange=${(/** @type {any} */ e) => set("cluster", e.currentTarget.value)}>
            ${clusters.length === 0 && html`<option value="">${t("admin.enroll.no_cluster")}</option>`}
            ${clusters.map((c) => html`<option value=${c.id} data-raw>${c.id}</option>`)}
          </select>
        <//>
        <${FormError} errors=${errors} />
        <div class="form-actions">
          <button type="submit" class="primary" disabled=${busy}>${t("admin.enroll.create")}</button>
        </div>
      </form>
      ${made && html`
        <div class="secret-once" role="status" data-testid="enrollment-token">
          <h2>${t("admin.enroll.created")}</h2>
          <p>${t("admin.enroll.once")}</p>
          <dl class="facts">
            <dt>${t("admin.enroll.token")}</dt><dd class="mono" data-raw data-testid="enroll-token">${made.token}</dd>
            <dt>${t("admin.enroll.ca_hash")}</dt><dd class="mono" data-raw>${made.ca_hash}</dd>
            <dt>${t("admin.enroll.expires")}</dt><dd data-raw>${dateTime(made.expires_at)}</dd>
          </dl>
          <p>${t("admin.enroll.command")}</p>
          <div class="secret-row">
            <pre class="mono command" data-raw data-testid="enroll-command">${enrollCommand(made, cluster)}</pre>
            <${CopyButton} text=${enrollCommand(made, cluster)} />
          </div>
          <button type="button" onClick=${() => setMade(null)}>${t("admin.done")}</button>
        </div>`}
    </div>`;
}
