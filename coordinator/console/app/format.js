// Numbers and times as the lists show them.
import { lang } from "./i18n.js";

/** @param {number} bytes */
export function gib(bytes) {
  const v = bytes / 2 ** 30;
  return v >= 100 || Number.isInteger(v) ? v.toFixed(0) : v.toFixed(1);
}

/** @param {string | null | undefined} iso */
export function dateTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(lang(), { hour12: false });
}

/** A short time for a list cell: month, day, hours and minutes. */
/** @param {string | null | undefined} iso */
export function shortTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(lang(), { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false });
}

/** @param {Date} d */
export function clock(d) {
  return d.toLocaleTimeString("en-GB", { hour12: false });
}
