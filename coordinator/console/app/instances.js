// The Instances screen (/instances).
import { html } from "./html.js";
import { t } from "./i18n.js";

/** @param {import("./shell.js").ScreenProps} _props */
export function InstancesScreen(_props) {
  return html`<section class="screen"><h1>${t("nav.instances")}</h1></section>`;
}

/** @param {import("./shell.js").ScreenProps & {id: string}} props */
export function InstanceDetail({ id }) {
  return html`<section class="screen"><h1>${t("nav.instances")} · <span data-raw>${id}</span></h1></section>`;
}
