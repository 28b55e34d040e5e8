// Tenants and their quotas: every tenant with what its instances hold against its limits;
// create a tenant (with a quota at once), change a quota. A limit left empty is unlimited.
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { t } from "./i18n.js";
import { call } from "./api.js";
import { dateTime, gib, shortTime } from "./format.js";
import { Dialog } from "./ui/dialog.js";
import { Field, FormError, useForm } from "./ui/form.js";
import { UsageBar } from "./usage_bar.js";
import { useTenants } from "./tenants_model.js";

/** @typedef {import("../types/api").components["schemas"]["Tenant"]} Tenant */
/** @typedef {import("../types/api").components["schemas"]["TenantQuota"]} TenantQuota */
/** @typedef {import("../types/api").components["schemas"]["Quota"]} Quota */

const QUOTA_FIELDS = ["cores", "memory_bytes", "instances"];

export function TenantsTab() {
  const { tenants, loaded, error, reload } = useTenants(true);
  const [quotas, setQuotas] = useState(/** @type {Record<string, TenantQuota>} */ ({}));
  /** @type {[{kind: "new"} | {kind: "quota", tenant: Tenant} | null, (d: any) => void]} */
  const [open, setOpen] = useState(/** @type {any} */ (null));

  useEffect(() => {
    let live = true;
    Promise.all(tenants.map((x) => call("GET", `/v1/tenants/${encodeURIComponent(x.id)}/quota`).catch(() => null)))
      .then((all) => {
        if (!live) return;
        /** @type {Record<string, TenantQuota>} */
        const m = {};
        for (const q of all) if (q) m[q.tenant_id] = q;
        setQuotas(m);
      });
    return () => {
      live = false;
    };
  }, [tenants]);

  /** @param {TenantQuota} q */
  function putQuota(q) {
    setQuotas({ ...quotas, [q.tenant_id]: q });
  }

  const sorted = [...tenants].sort((a, b) => a.email.localeCompare(b.email));
  return html`
    <div class="admin-tenants">
      <div class="toolbar">
        <span class="count">${t("admin.tenants.count", { n: tenants.length })}</span>
        <button type="button" class="primary" data-testid="tenant-add" onClick=${() => setOpen({ kind: "new" })}>${t("admin.tenants.add")}</button>
      </div>
      ${error && html`<p class="error" role="alert" data-raw>${error}</p>`}
      <div class="net-table-wrap" tabindex="0" role="region" aria-label=${t("admin.tab.tenants")}>
        <table class="net-table">
          <thead>
            <tr>
              <th scope="col">${t("admin.tenants.email")}</th>
              <th scope="col">${t("admin.tenants.name")}</th>
              <th scope="col">${t("admin.col.id")}</th>
              <th scope="col">${t("admin.quota.cores")}</th>
              <th scope="col">${t("admin.quota.memory")}</th>
              <th scope="col">${t("admin.quota.instances")}</th>
              <th scope="col">${t("admin.col.created")}</th>
              <th scope="col">${t("admin.col.actions")}</th>
            </tr>
          </thead>
          <tbody>
            ${sorted.map((x) => {
              const q = quotas[x.id];
              return html`
                <tr key=${x.id} data-tenant-id=${x.id} data-email=${x.email}>
                  <td data-raw>${x.email}</td>
                  <td data-raw>${x.name}</td>
                  <td class="mono" data-raw>${x.id}</td>
                  <td data-quota="cores">${q && html`<${Limit} used=${q.usage.cores} limit=${q.quota.cores} label=${t("admin.quota.cores")} />`}</td>
                  <td data-quota="memory">${q && html`<${Limit} used=${q.usage.memory_bytes} limit=${q.quota.memory_bytes} label=${t("admin.quota.memory")} gib />`}</td>
                  <td data-quota="instances">${q && html`<${Limit} used=${q.usage.instances} limit=${q.quota.instances} label=${t("admin.quota.instances")} />`}</td>
                  <td data-raw title=${dateTime(x.created_at)}>${shortTime(x.created_at)}</td>
                  <td><button type="button" class="link" data-action="quota" onClick=${() => setOpen({ kind: "quota", tenant: x })}>${t("admin.quota.edit")}</button></td>
                </tr>`;
            })}
          </tbody>
        </table>
        ${loaded && tenants.length === 0 && html`<p class="empty">${t("admin.tenants.empty")}</p>`}
      </div>
      ${open && open.kind === "new" && html`
        <${TenantForm} onClose=${() => setOpen(null)} onSaved=${(/** @type {TenantQuota | null} */ q) => {
          if (q) putQuota(q);
          reload();
          setOpen(null);
        }} />`}
      ${open && open.kind === "quota" && html`
        <${QuotaForm} tenant=${open.tenant} quota=${quotas[open.tenant.id]} onClose=${() => setOpen(null)}
          onSaved=${(/** @type {TenantQuota} */ q) => { putQuota(q); setOpen(null); }} />`}
    </div>`;
}

/** Used of a limit: a bar when limited, "used · unlimited" otherwise. */
/** @param {{used: number, limit?: number | null, label: string, gib?: boolean}} props */
function Limit({ used, limit, label, gib: inGib }) {
  const show = (/** @type {number} */ n) => (inGib ? `${gib(n)} GiB` : String(n));
  if (limit == null) {
    return html`<span><span data-raw>${show(used)}</span> · ${t("admin.quota.unlimited")}</span>`;
  }
  const text = inGib ? t("unit.gib_of", { used: gib(used), total: gib(limit) }) : `${used} / ${limit}`;
  return html`<${UsageBar} used=${used} total=${limit} label=${label} text=${text} />`;
}

/** The quota fields of a form: empty is unlimited; memory in GiB. */
/** @param {{cores: string, memory: string, instances: string}} v @returns {Quota} */
function quotaBody(v) {
  const n = (/** @type {string} */ s) => (s.trim() === "" ? null : Number(s.trim()));
  const mem = n(v.memory);
  return { cores: n(v.cores), memory_bytes: mem === null ? null : Math.round(mem * 2 ** 30), instances: n(v.instances) };
}

/** The quota fields that are not numbers, as form errors. */
/** @param {{cores: string, memory: string, instances: string}} v @returns {Record<string, string>} */
function quotaProblems(v) {
  /** @type {Record<string, string>} */
  const out = {};
  for (const [f, name, re] of /** @type {const} */ ([["cores", "cores", /^\d+$/], ["memory", "memory_bytes", /^\d+(\.\d+)?$/], ["instances", "instances", /^\d+$/]])) {
    if (v[f].trim() !== "" && !re.test(v[f].trim())) out[name] = t("admin.quota.number");
  }
  return out;
}

/**
 * @param {{v: {cores: string, memory: string, instances: string}, set: (f: string, value: string) => void,
 *   errors: Record<string, string>}} props
 */
function QuotaFields({ v, set, errors }) {
  const input = (/** @type {"cores" | "memory" | "instances"} */ f) => ({
    value: v[f],
    inputmode: "numeric",
    onInput: (/** @type {any} */ e) => set(f, e.currentTarget.value),
  });
  return html`
    <fieldset class="admin-quota">
      <legend>${t("admin.quota.title")}</legend>
      <p class="hint">${t("admin.quota.hint")}</p>
      <${Field} label=${t("admin.quota.cores")} name="cores" error=${errors.cores}><input ...${input("cores")} /><//>
      <${Field} label=${t("admin.quota.memory_gib")} name="memory_bytes" error=${errors.memory_bytes}><input ...${input("memory")} /><//>
      <${Field} label=${t("admin.quota.instances")} name="instances" error=${errors.instances}><input ...${input("instances")} /><//>
    </fieldset>`;
}

/** @param {{onClose: () => void, onSaved: (q: TenantQuota | null) => void}} props */
function TenantForm({ onClose, onSaved }) {
  const [v, setV] = useState({ email: "", name: "", cores: "", memory: "", instances: "" });
  const { errors, setErrors, busy, submit } = useForm();
  const set = (/** @type {string} */ f, /** @type {string} */ value) => setV({ ...v, [f]: value });

  /** @param {Event} e */
  async function save(e) {
    e.preventDefault();
    const bad = quotaProblems(v);
    if (Object.keys(bad).length) {
      setErrors(bad);
      return;
    }
    const tenant = await submit(["email", "name"], () => call("POST", "/v1/tenants", { email: v.email.trim(), name: v.name.trim() }));
    if (!tenant) return;
    const q = quotaBody(v);
    if (q.cores === null && q.memory_bytes === null && q.instances === null) {
      onSaved(null);
      return;
    }
    const saved = await submit(QUOTA_FIELDS, () => call("PUT", `/v1/tenants/${encodeURIComponent(tenant.id)}/quota`, q));
    if (saved) onSaved(saved);
  }

  return html`
    <${Dialog} title=${t("admin.tenants.add")} onClose=${onClose} testid="tenant-form">
      <form class="form" onSubmit=${save}>
        <${Field} label=${t("admin.tenants.email")} name="email" error=${errors.email}>
          <input type="email" autocomplete="off" value=${v.email} onInput=${(/** @type {any} */ e) => set("email", e.currentTarget.value)} />
        <//>
        <${Field} label=${t("admin.tenants.name")} name="name" error=${errors.name}>
          <input autocomplete="off" value=${v.name} onInput=${(/** @type {any} */ e) => set("name", e.currentTarget.value)} />
        <//>
        <${QuotaFields} v=${v} set=${set} errors=${errors} />
        <${FormError} errors=${errors} />
        <div class="form-actions">
          <button type="submit" class="primary" disabled=${busy}>${t("admin.create")}</button>
          <button type="button" onClick=${onClose}>${t("ui.cancel")}</button>
        </div>
      </form>
    <//>`;
}

/**
 * @param {{tenant: Tenant, quota?: TenantQuota, onClose: () => void, onSaved: (q: TenantQuota) => void}} props
 */
function QuotaForm({ tenant, quota, onClose, onSaved }) {
  const cur = quota ? quota.quota : {};
  const [v, setV] = useState({
    cores: cur.cores == null ? "" : String(cur.cores),
    memory: cur.memory_bytes == null ? "" : gib(cur.memory_bytes),
    instances: cur.instances == null ? "" : String(cur.instances),
  });
  const { errors, setErrors, busy, submit } = useForm();
  const set = (/** @type {string} */ f, /** @type {string} */ value) => setV({ ...v, [f]: value });

  /** @param {Event} e */
  async function save(e) {
    e.preventDefault();
    const bad = quotaProblems(v);
    if (Object.keys(bad).length) {
      setErrors(bad);
      return;
    }
    const saved = await submit(QUOTA_FIELDS, () => call("PUT", `/v1/tenants/${encodeURIComponent(tenant.id)}/quota`, quotaBody(v)));
    if (saved) onSaved(saved);
  }

  return html`
    <${Dialog} title=${t("admin.quota.edit")} onClose=${onClose} testid="quota-form">
      <form class="form" onSubmit=${save}>
        <p><span data-raw>${tenant.email}</span></p>
        <${QuotaFields} v=${v} set=${set} errors=${errors} />
        <${FormError} errors=${errors} />
        <div class="form-actions">
          <button type="submit" class="primary" disabled=${busy}>${t("admin.save")}</button>
          <button type="button" onClick=${onClose}>${t("ui.cancel")}</button>
        </div>
      </form>
    <//>`;
}
