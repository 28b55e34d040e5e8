// Who am I: the session's role, tenant and when it ends (GET /v1/session).
import { html } from "./html.js";
import { t } from "./i18n.js";
import { dateTime } from "./format.js";

/** @param {{session: import("./app.js").Session}} props */
export function Overview({ session }) {
  return html`
    <section class="card overview" aria-labelledby="overview-title">
      <h1 id="overview-title">${t("overview.title")}</h1>
      <dl class="facts">
        <dt>${t("overview.role")}</dt>
        <dd data-testid="role">${session.role === "admin" ? t("role.admin") : t("role.tenant")}</dd>
        <dt>${t("overview.tenant")}</dt>
        <dd data-testid="tenant">${session.tenant_id ? html`<span data-raw>${session.tenant_id}</span>` : t("overview.all_tenants")}</dd>
        <dt>${t("overview.token")}</dt>
        <dd data-raw>${session.token_id}</dd>
        <dt>${t("overview.expires")}</dt>
        <dd data-raw>${dateTime(session.expires_at)}</dd>
        <dt>${t("overview.idle")}</dt>
        <dd data-raw>${dateTime(session.idle_expires_at)}</dd>
      </dl>
    </section>`;
}
