// The Administration screen (/admin).
import { html } from "./html.js";
import { t } from "./i18n.js";

/** @param {import("./shell.js").ScreenProps} _props */
export function AdminScreen(_props) {
  return html`<section class="screen"><h1>${t("nav.admin")}</h1></section>`;
}
