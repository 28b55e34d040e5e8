// The Administration screen (/admin, admins only), one tab each (the tab is in the URL,
// ?tab=tokens): tenants and their quotas, API tokens, enrollment tokens for new hosts,
// clusters, the audit log, operations.
import { html } from "./html.js";
import { t } from "./i18n.js";
import { Tabs } from "./ui/tabs.js";
import { TenantsTab } from "./admin_tenants.js";
import { TokensTab } from "./admin_tokens.js";
import { EnrollmentTab } from "./admin_enrollment.js";
import { ClustersTab } from "./admin_clusters.js";
import { AuditTab } from "./admin_audit.js";
import { OperationsTab } from "./admin_operations.js";

const TABS = /** @type {const} */ (["tenants", "tokens", "enrollment", "clusters", "audit", "operations"]);

/** @param {import("./shell.js").ScreenProps} props */
export function AdminScreen({ feed, route }) {
  const asked = route.params.get("tab") || "tenants";
  const tab = TABS.find((x) => x === asked) || "tenants";
  const tabs = TABS.map((id) => ({ id, label: t(/** @type {any} */ (`admin.tab.${id}`)) }));
  return html`
    <section class="admin" aria-labelledby="admin-title">
      <div class="screen-head">
        <h1 id="admin-title">${t("admin.title")}</h1>
      </div>
      <${Tabs} tabs=${tabs} current=${tab} label=${t("admin.tabs")}
        onChange=${(/** @type {string} */ id) => { location.hash = id === "tenants" ? "#/admin" : `#/admin?tab=${id}`; }} />
      <div role="tabpanel" class="admin-panel" aria-labelledby=${`tab-${tab}`} data-tab-panel=${tab}>
        ${tab === "tenants" && html`<${TenantsTab} />`}
        ${tab === "tokens" && html`<${TokensTab} />`}
        ${tab === "enrollment" && html`<${EnrollmentTab} />`}
        ${tab === "clusters" && html`<${ClustersTab} />`}
        ${tab === "audit" && html`<${AuditTab} route=${route} />`}
        ${tab === "operations" && html`<${OperationsTab} feed=${feed} route=${route} />`}
      </div>
    </section>`;
}
