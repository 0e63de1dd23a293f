// @ts-check
// Formatting helpers shared by the dashboard's modules. Pure: no DOM, no state (unit tests:
// tests/js/format.test.js).

/** The event levels, least severe first. */
export const LEVELS = /** @type {const} */ (["debug", "info", "warning", "error", "fatal"]);

/** @typedef {typeof LEVELS[number]} Level */

/**
 * A level the page knows (an unknown or missing one shows as `error`).
 * @param {unknown} level
 * @returns {Level}
 */
export function levelOf(level) {
  return LEVELS.find((l) => l === level) ?? "error";
}

/**
 * A level's rank, `debug` 0 to `fatal` 4 (an unknown one ranks as `debug`).
 * @param {unknown} level
 */
export function severity(level) {
  return Math.max(0, LEVELS.findIndex((l) => l === level));
}

/**
 * A number with leading zeros.
 * @param {number} n
 * @param {number} [width]
 */
export function pad(n, width = 2) {
  return String(n).padStart(width, "0");
}

/**
 * `n` and the noun for it: `1 event`, `2 events`.
 * @param {number} n
 * @param {string} one
 * @param {string} many
 */
export function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * Local clock time of an ISO timestamp, with the date when it is not `today`.
 * @param {string | null | undefined} iso
 * @param {Date} [today]
 */
export function shortTime(iso, today = new Date()) {
  const d = new Date(iso ?? "");
  if (Number.isNaN(d.getTime())) return String(iso ?? "");
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  if (d.toDateString() === today.toDateString()) return time;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

/**
 * A value as text: strings as they are, the rest as JSON.
 * @param {unknown} v
 * @returns {string}
 */
export function text(v) {
  if (typeof v === "string") return v;
  if (v === undefined) return "";
  try {
    return JSON.stringify(v, null, 2) ?? String(v);
  } catch {
    return String(v);
  }
}

/**
 * Whether a value is worth showing: not null, undefined or the empty string.
 * @param {unknown} v
 */
export function present(v) {
  return v !== null && v !== undefined && v !== "";
}

/**
 * A time given as RFC 3339 text or unix seconds, in local time with milliseconds.
 * @param {unknown} v
 */
export function when(v) {
  const d = typeof v === "number" ? new Date(v * 1000) : new Date(typeof v === "string" ? v : NaN);
  if (!present(v) || Number.isNaN(d.getTime())) return text(v);
  const day = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  return `${day} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}
