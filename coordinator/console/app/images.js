// The Images screen (/images).
import { html } from "./html.js";
import { t } from "./i18n.js";

/** @param {import("./shell.js").ScreenProps} _props */
export function ImagesScreen(_props) {
  return html`<section class="screen"><h1>${t("nav.images")}</h1></section>`;
}
