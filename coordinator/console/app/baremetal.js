// The Bare metal screen (/baremetal).
import { html } from "./html.js";
import { t } from "./i18n.js";

/** @param {import("./shell.js").ScreenProps} _props */
export function BaremetalScreen(_props) {
  return html`<section class="screen"><h1>${t("nav.baremetal")}</h1></section>`;
}

/** @param {import("./shell.js").ScreenProps & {id: string}} props */
export function BaremetalDetail({ id }) {
  return html`<section class="screen"><h1>${t("nav.baremetal")} · <span data-raw>${id}</span></h1></section>`;
}
