// The External network screen (/network).
import { html } from "./html.js";
import { t } from "./i18n.js";

/** @param {import("./shell.js").ScreenProps} _props */
export function NetworkScreen(_props) {
  return html`<section class="screen"><h1>${t("nav.network")}</h1></section>`;
}
