// The audit log: who did what, newest first, with filters by actor, action and a text in
// the target or detail (in the URL). The log has no change-feed events: it is read when the
// tab opens and when asked.
import { useMemo, useState } from "preact/hooks";
import { html } from "./html.js";
import { t } from "./i18n.js";
import { useListOnce } from "./list_once.js";
import { dateTime } from "./format.js";
import { replaceParams } from "./route.js";

/** @typedef {import("../types/api").components["schemas"]["AuditEntry"]} AuditEntry */

/** Rows drawn at most; the filters narrow the rest. */
const SHOWN = 500;

/** @param {{route: import("./route.js").Route}} props */
export function AuditTab({ route }) {
  const { items: entries, loaded, error, reload: load } =
    /** @type {ReturnType<typeof useListOnce<AuditEntry>>} */ (useListOnce("/v1/audit"));
  const [f, setF] = useState(() => ({
    actor: route.params.get("actor") || "",
    action: route.params.get("action") || "",
    q: route.params.get("q") || "",
  }));

  /** @param {"actor" | "action" | "q"} name @param {string} value */
  function set(name, value) {
    const next = { ...f, [name]: value };
    setF(next);
    replaceParams("/admin", { tab: "audit", ...next });
  }

  const actions = useMemo(() => [...new Set(entries.map((e) => e.action))].sort(), [entries]);
  const shown = useMemo(() => {
    const actor = f.actor.trim().toLowerCase();
    const q = f.q.trim().toLowerCase();
    return entries.filter((e) => (!f.action || e.action === f.action)
      && (!actor || e.actor.toLowerCase().includes(actor))
      && (!q || e.target.toLowerCase().includes(q) || e.detail.toLowerCase().includes(q)));
  }, [entries, f]);

  return html`
    <div class="admin-audit">
      <div class="toolbar audit-filters" role="search" aria-label=${t("admin.audit.filters")}>
        <label>${t("admin.audit.action")}
          <select value=${f.action} data-filter="action" onChange=${(/** @type {any} */ e) => set("action", e.currentTarget.value)}>
            <option value="">${t("admin.audit.any_action")}</option>
            ${actions.map((a) => html`<option value=${a} data-raw>${a}</option>`)}
          </select>
        </label>
        <label>${t("admin.audit.actor")}
          <input type="search" data-filter="actor" value=${f.actor} onInput=${(/** @type {any} */ e) => set("actor", e.currentTarget.value)} />
        </label>
        <label>${t("admin.audit.target")}
          <input type="search" data-filter="q" value=${f.q} onInput=${(/** @type {any} */ e) => set("q", e.currentTarget.value)} />
        </label>
        <span class="count" data-testid="audit-count">${t("admin.audit.count", { shown: shown.length, total: entries.length })}</span>
        <button type="button" onClick=${load}>${t("admin.refresh")}</button>
      </div>
      ${error && html`<p class="error" role="alert" data-raw>${error}</p>`}
      <div class="net-table-wrap" tabindex="0" role="region" aria-label=${t("admin.tab.audit")}>
        <table class="net-table">
          <thead>
            <tr>
              <th scope="col">${t("admin.audit.at")}</th>
              <th scope="col">${t("admin.audit.actor")}</th>
              <th scope="col">${t("admin.audit.action")}</th>
              <th scope="col">${t("admin.audit.target")}</th>
              <th scope="col">${t("admin.audit.detail")}</th>
            </tr>
          </thead>
          <tbody>
            ${shown.slice(0, SHOWN).map((e) => html`
              <tr data-action=${e.action} data-target=${e.target}>
                <td data-raw>${dateTime(e.at)}</td>
                <td class="mono" data-raw>${e.actor}</td>
                <td data-raw>${e.action}</td>
                <td class="mono" data-raw>${e.target}</td>
                <td class="audit-detail" data-raw>${e.detail}</td>
              </tr>`)}
          </tbody>
        </table>
        ${loaded && shown.length === 0 && html`<p class="empty">${t("admin.audit.empty")}</p>`}
        ${shown.length > SHOWN && html`<p class="hint">${t("admin.audit.more", { n: SHOWN })}</p>`}
      </div>
    </div>`;
}
