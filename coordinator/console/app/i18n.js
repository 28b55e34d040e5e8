// Every visible string comes from a catalogue: one file per screen and language,
// i18n/<lang>/<screen>.json (a test fails when a language lacks a key of the other, or when
// two files define one key). The language is the stored choice, else the browser's, else
// English.
import shellEn from "./i18n/en/shell.json" with { type: "json" };
import shellZh from "./i18n/zh-CN/shell.json" with { type: "json" };
import hostsEn from "./i18n/en/hosts.json" with { type: "json" };
import hostsZh from "./i18n/zh-CN/hosts.json" with { type: "json" };
import hostDetailEn from "./i18n/en/host_detail.json" with { type: "json" };
import hostDetailZh from "./i18n/zh-CN/host_detail.json" with { type: "json" };
import maintenanceEn from "./i18n/en/maintenance.json" with { type: "json" };
import maintenanceZh from "./i18n/zh-CN/maintenance.json" with { type: "json" };
import instancesEn from "./i18n/en/instances.json" with { type: "json" };
import instancesZh from "./i18n/zh-CN/instances.json" with { type: "json" };
import baremetalEn from "./i18n/en/baremetal.json" with { type: "json" };
import baremetalZh from "./i18n/zh-CN/baremetal.json" with { type: "json" };
import imagesEn from "./i18n/en/images.json" with { type: "json" };
import imagesZh from "./i18n/zh-CN/images.json" with { type: "json" };
import networkEn from "./i18n/en/network.json" with { type: "json" };
import networkZh from "./i18n/zh-CN/network.json" with { type: "json" };
import adminEn from "./i18n/en/admin.json" with { type: "json" };
import adminZh from "./i18n/zh-CN/admin.json" with { type: "json" };
import paletteEn from "./i18n/en/palette.json" with { type: "json" };
import paletteZh from "./i18n/zh-CN/palette.json" with { type: "json" };

/** Each screen's catalogues, [en, zh-CN]; a new screen adds its pair here and to `Key`. */
const PARTS = [
  [shellEn, shellZh],
  [hostsEn, hostsZh],
  [hostDetailEn, hostDetailZh],
  [maintenanceEn, maintenanceZh],
  [instancesEn, instancesZh],
  [baremetalEn, baremetalZh],
  [imagesEn, imagesZh],
  [networkEn, networkZh],
  [adminEn, adminZh],
  [paletteEn, paletteZh],
];

/**
 * @typedef {keyof typeof shellEn |
 *   keyof typeof hostsEn |
 *   keyof typeof hostDetailEn |
 *   keyof typeof maintenanceEn |
 *   keyof typeof instancesEn |
 *   keyof typeof baremetalEn |
 *   keyof typeof imagesEn |
 *   keyof typeof networkEn |
 *   keyof typeof adminEn |
 *   keyof typeof paletteEn} Key
 */

const en = Object.assign({}, ...PARTS.map((p) => p[0]));
const zh = Object.assign({}, ...PARTS.map((p) => p[1]));

/** @type {Record<string, Record<string, string>>} */
export const catalogues = { en, "zh-CN": zh };
export const languages = /** @type {const} */ (["zh-CN", "en"]);
const STORAGE_KEY = "plinth.lang";

/** @returns {string} */
function initial() {
  try {
    const saved = localStorage.getItem(STORAGE_KEY);
    if (saved && saved in catalogues) return saved;
  } catch {
    // Storage refused (private mode): fall back to the browser's language.
  }
  const wanted = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language];
  for (const l of wanted) {
    if (l && l.toLowerCase().startsWith("zh")) return "zh-CN";
    if (l && l.toLowerCase().startsWith("en")) return "en";
  }
  return "en";
}

let current = initial();
/** @type {Set<() => void>} */
const listeners = new Set();

export function lang() {
  return current;
}

/** @param {string} l */
export function setLang(l) {
  if (!(l in catalogues) || l === current) return;
  current = l;
  try {
    localStorage.setItem(STORAGE_KEY, l);
  } catch {
    // Not remembered; the choice still holds for this page.
  }
  document.documentElement.lang = l;
  for (const f of listeners) f();
}

/** @param {() => void} f @returns {() => void} */
export function onLangChange(f) {
  listeners.add(f);
  return () => listeners.delete(f);
}

/**
 * The catalogue's text for `key`, with `{name}` placeholders filled from `vars`.
 * @param {Key} key
 * @param {Record<string, string | number>} [vars]
 */
export function t(key, vars) {
  const text = catalogues[current][key] ?? catalogues.en[key] ?? key;
  if (!vars) return text;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}
