// Every visible string comes from a catalogue (i18n/en.json, i18n/zh-CN.json; a test fails
// when either lacks a key of the other). The language is the stored choice, else the
// browser's, else English.
import en from "./i18n/en.json" with { type: "json" };
import zh from "./i18n/zh-CN.json" with { type: "json" };

/** @typedef {keyof typeof en} Key */

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
