// The frame around every screen: navigation (the screens the session's role may use), who is
// signed in, the live indicator, the language, sign-out.
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { call } from "./api.js";
import { t } from "./i18n.js";
import { useRoute } from "./route.js";
import { LanguageSwitch } from "./language_switch.js";
import { LiveIndicator } from "./live_indicator.js";
import { Overview } from "./overview.js";
import { HostsScreen } from "./hosts.js";
import { HostDetail } from "./host_detail.js";
import { MaintenanceScreen, MaintenanceBoard } from "./maintenance.js";
import { InstancesScreen, InstanceDetail } from "./instances.js";
import { BaremetalScreen, BaremetalDetail } from "./baremetal.js";
import { ImagesScreen } from "./images.js";
import { NetworkScreen } from "./network.js";
import { AdminScreen } from "./admin.js";
import { Palette, openPalette } from "./palette.js";
import { OperationsButton } from "./operations.js";

/**
 * @typedef {{session: import("./app.js").Session, feed: import("./events.js").ChangeFeed,
 *   route: import("./route.js").Route}} ScreenProps
 * @typedef {{path: string, label: import("./i18n.js").Key, admin: boolean, nav?: boolean,
 *   view: (props: ScreenProps) => any,
 *   detail?: (props: ScreenProps & {id: string}) => any}} Screen
 */

/**
 * The screens, in navigation order; `admin` ones are not offered to a tenant. A screen owns
 * its path and every path under it (`/hosts/<id>` is the Hosts screen's unless a screen
 * claims it): one level under it is its `detail` view, given the id; `nav: false` ones are
 * reached by link only.
 * @type {Screen[]}
 */
const SCREENS = [
  { path: "/", label: "nav.overview", admin: false, view: Overview },
  { path: "/hosts", label: "nav.hosts", admin: true, view: HostsScreen, detail: HostDetail },
  { path: "/maintenance", label: "nav.maintenance", admin: true, view: MaintenanceScreen, detail: MaintenanceBoard },
  { path: "/instances", label: "nav.instances", admin: false, view: InstancesScreen, detail: InstanceDetail },
  { path: "/baremetal", label: "nav.baremetal", admin: false, view: BaremetalScreen, detail: BaremetalDetail },
  { path: "/images", label: "nav.images", admin: false, view: ImagesScreen },
  { path: "/network", label: "nav.network", admin: false, view: NetworkScreen },
  { path: "/admin", label: "nav.admin", admin: true, view: AdminScreen },
];

/** The id one level under the screen's path (`/hosts/<id>`), if the route has one. */
function detailId(/** @type {Screen} */ screen, /** @type {string} */ path) {
  if (!screen.detail || screen.path === "/") return null;
  const rest = path.slice(screen.path.length + 1);
  return rest && !rest.includes("/") ? decodeURIComponent(rest) : null;
}

/** The screen of `path`: the one with the longest path that is `path` or a folder above it. */
function screenOf(/** @type {Screen[]} */ screens, /** @type {string} */ path) {
  let best = screens[0];
  for (const s of screens) {
    const owns = s.path === path || path.startsWith(s.path === "/" ? "/" : `${s.path}/`);
    if (owns && s.path.length > best.path.length) best = s;
  }
  return best;
}

/**
 * @param {{session: import("./app.js").Session, feed: import("./events.js").ChangeFeed,
 *   onSignedOut: () => void}} props
 */
export function Shell({ session, feed, onSignedOut }) {
  const route = useRoute();
  const isAdmin = session.role === "admin";
  const screens = SCREENS.filter((s) => isAdmin || !s.admin);
  const current = screenOf(screens, route.path);
  const nav = screens.filter((s) => s.nav !== false);
  const id = detailId(current, route.path);
  // At phone width the navigation is behind a menu button; going somewhere closes it.
  const [menuOpen, setMenuOpen] = useState(false);
  useEffect(() => setMenuOpen(false), [route.path]);

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
        <button type="button" class="menu-button" aria-expanded=${menuOpen ? "true" : "false"} aria-controls="main-nav"
          onClick=${() => setMenuOpen(!menuOpen)}>${t("menu.open")}</button>
        <nav id="main-nav" class=${menuOpen ? "is-open" : undefined} aria-label=${t("nav.label")}>
          <ul>
            ${nav.map((s) => html`
              <li><a href=${`#${s.path}`} aria-current=${s === current ? "page" : undefined}
                onClick=${() => setMenuOpen(false)}>${t(s.label)}</a></li>`)}
          </ul>
        </nav>
        <div class="top-right">
          <button type="button" class="palette-button" aria-keyshortcuts="Control+K Meta+K" onClick=${openPalette}>${t("palette.open")}</button>
          ${isAdmin && html`<${OperationsButton} feed=${feed} />`}
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
        ${id !== null && current.detail
          ? html`<${current.detail} session=${session} feed=${feed} route=${route} id=${id} />`
          : html`<${current.view} session=${session} feed=${feed} route=${route} />`}
      </main>
      <${Palette} session=${session} feed=${feed} />
    </div>`;
}
