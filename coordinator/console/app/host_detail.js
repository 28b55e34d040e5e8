// A host's page (/hosts/<id>): basic info, monitoring, instances, devices.
import { html } from "./html.js";
import { t } from "./i18n.js";

/** @param {import("./shell.js").ScreenProps & {id: string}} props */
export function HostDetail({ id }) {
  return html`<section class="screen"><h1>${t("nav.hosts")} · <span data-raw>${id}</span></h1></section>`;
}
