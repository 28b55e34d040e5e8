// The language picker; the choice is remembered in localStorage.
import { html } from "./html.js";
import { lang, languages, setLang, t } from "./i18n.js";

export function LanguageSwitch() {
  return html`
    <label class="lang">
      <span class="visually-hidden">${t("lang.label")}</span>
      <select aria-label=${t("lang.label")} value=${lang()}
        onChange=${(/** @type {any} */ e) => setLang(e.currentTarget.value)}>
        ${languages.map((l) => html`<option value=${l} selected=${l === lang()}>${t(/** @type {any} */ (`lang.${l}`))}</option>`)}
      </select>
    </label>`;
}
