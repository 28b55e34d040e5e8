// The frame around every screen: navigation (the screens the session's role may use), who is
// signed in, the live indicator, the language, sign-out.
import { html } from "./html.js";
import { call } from "./api.js";
import { t } from "./i18n.js";
import { useRoute } from "./route.js";
import { LanguageSwitch } from "./language_switch.js";
import { LiveIndicator } from "./live_indicator.js";
import { Overview } from "./overview.js";
import { HostsScreen } from "./hosts.js";

/**
 * The screens, in navigation order; `admin` ones are not offered to a tenant.
 * @type {{path: string, label: import("./i18n.js").Key, admin: boolean}[]}
 */
const SCREENS = [
  { path: "/", label: "nav.overview", admin: false },
  { path: "/hosts", label: "nav.hosts", admin: true },
];

/**
 * @param {{session: import("./app.js").Session, feed: import("./events.js").ChangeFeed,
 *   onSignedOut: () => void}} props
 */
export function Shell({ session, feed, onSignedOut }) {
  const route = useRoute();
  const isAdmin = session.role === "admin";
  const screens = SCREENS.filter((s) => isAdmin || !s.admin);
  const current = screens.find((s) => s.path === route.path) || screens[0];

  async function signOut() {
    try {
      await call("DELETE", "/v1/session");
    } finally {
      onSignedOut();
    }
  }

  return html`
    <div class="shell">
      <header class="top">
        <a class="brand" href="#/">${t("app.name")}</a>
        <nav aria-label=${t("nav.label")}>
          <ul>
            ${screens.map((s) => html`
              <li><a href=${`#${s.path}`} aria-current=${s === current ? "page" : undefined}>${t(s.label)}</a></li>`)}
          </ul>
        </nav>
        <div class="top-right">
          <${LiveIndicator} feed=${feed} />
          <span class="who" data-testid="who">
            ${isAdmin ? t("role.admin") : t("role.tenant")}
            ${session.tenant_id && html` · <span data-raw>${session.tenant_id}</span>`}
          </span>
          <${LanguageSwitch} />
          <button type="button" onClick=${signOut}>${t("signout")}</button>
        </div>
      </header>
      <main class="content">
        ${current.path === "/hosts"
          ? html`<${HostsScreen} feed=${feed} route=${route} />`
          : html`<${Overview} session=${session} />`}
      </main>
    </div>`;
}
