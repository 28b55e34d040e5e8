// Numbers and times as the lists show them.
import { lang } from "./i18n.js";

/** @param {number} bytes */
export function gib(bytes) {
  const v = bytes / 2 ** 30;
  return v >= 100 || Number.isInteger(v) ? v.toFixed(0) : v.toFixed(1);
}

/**
 * One Intl.DateTimeFormat per language and use, made once: making one per call (what
 * toLocaleString with options does) costs more than a list row's whole render.
 * @type {Map<string, Intl.DateTimeFormat>}
 */
const formats = new Map();

/** @param {string} use @param {Intl.DateTimeFormatOptions} opts */
function formatter(use, opts) {
  const key = `${lang()} ${use}`;
  let f = formats.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat(lang(), opts);
    formats.set(key, f);
  }
  return f;
}

/** @param {string | null | undefined} iso */
export function dateTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  // What toLocaleString(lang, {hour12: false}) shows: the date and the time, numeric.
  return formatter("dateTime", {
    year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric", second: "numeric", hour12: false,
  }).format(d);
}

/** A short time for a list cell: month, day, hours and minutes. */
/** @param {string | null | undefined} iso */
export function shortTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return formatter("shortTime", { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false }).format(d);
}

/** @param {Date} d */
export function clock(d) {
  return d.toLocaleTimeString("en-GB", { hour12: false });
}
