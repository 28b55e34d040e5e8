// The Maintenance screen (/maintenance).
import { html } from "./html.js";
import { t } from "./i18n.js";

/** @param {import("./shell.js").ScreenProps} _props */
export function MaintenanceScreen(_props) {
  return html`<section class="screen"><h1>${t("nav.maintenance")}</h1></section>`;
}

/** @param {import("./shell.js").ScreenProps & {id: string}} props */
export function MaintenanceBoard({ id }) {
  return html`<section class="screen"><h1>${t("nav.maintenance")} · <span data-raw>${id}</span></h1></section>`;
}
