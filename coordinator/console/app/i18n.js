// Every visible string comes from a catalogue: one file per screen and language,
// i18n/<lang>/<screen>.json (a test fails when a language lacks a key of the other, or when
// two files define one key). The language is the stored choice, else the browser's, else
// English.
import shellEn from "./i18n/en/shell.json" with { type: "json" };
import shellZh from "./i18n/zh-CN/shell.json" with { type: "json" };
import hostsEn from "./i18n/en/hosts.json" with { type: "json" };
import hostsZh from "./i18n/zh-CN/hosts.json" with { type: "json" };

/** Each screen's catalogues, [en, zh-CN]; a new screen adds its pair here and to `Key`. */
const PARTS = [
  [shellEn, shellZh],
  [hostsEn, hostsZh],
];

/** @typedef {keyof typeof shellEn | keyof typeof hostsEn} Key */

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
