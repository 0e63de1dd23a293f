// @ts-check
// The live feed's filters (docs/PROTOCOL.md `subscribe`): what the controls ask for, how
// the server's confirmation reads, and whether an event passes. Pure: no DOM, no state.

import { severity } from "./format.js";

/**
 * A `subscribe` message's filters; the server's confirmation has every value a list.
 * @typedef {{ level?: string | string[], min_level?: string | string[], environment?: string | string[] }} Filters
 */

/**
 * The filters the controls ask for: the level select (`error`, `min:warning` or empty) and
 * the environment box.
 * @param {string} level
 * @param {string} environment
 * @returns {Filters}
 */
export function wantedFilters(level, environment) {
  /** @type {Filters} */
  const filters = {};
  if (level.startsWith("min:")) filters.min_level = level.slice(4);
  else if (level) filters.level = level;
  const env = environment.trim();
  if (env) filters.environment = env;
  return filters;
}

/**
 * Filters in the controls' terms: `{level: "min:error" | "error" | "", environment}`.
 * @param {Filters} filters
 */
export function describe(filters) {
  /** @param {string | string[] | undefined} v */
  const one = (v) => (Array.isArray(v) ? v.join(",") : (v ?? ""));
  const level = filters.min_level ? `min:${one(filters.min_level)}` : one(filters.level);
  return { level, environment: one(filters.environment) };
}

/**
 * Whether two sets of filters let the same events through.
 * @param {Filters} a
 * @param {Filters} b
 */
export function sameFilters(a, b) {
  const x = describe(a);
  const y = describe(b);
  return x.level === y.level && x.environment === y.environment;
}

/**
 * Whether an event passes the filters.
 * @param {{ level?: string, environment?: string }} event
 * @param {Filters} filters
 */
export function matches(event, filters) {
  /** @param {string | string[] | undefined | null} v */
  const list = (v) => (v === undefined || v === null ? null : Array.isArray(v) ? v : [v]);
  const level = list(filters.level);
  if (level && level.length && !level.includes(event.level ?? "")) return false;
  const min = list(filters.min_level);
  if (min && min.length) {
    const floor = Math.min(...min.map(severity));
    if (severity(event.level) < floor) return false;
  }
  const env = list(filters.environment);
  if (env && env.length && !env.includes(event.environment ?? "")) return false;
  return true;
}

/**
 * The filter status line: what the server applies, or that a change is on its way.
 * @param {Filters} applied
 * @param {boolean} pending
 */
export function filterLabel(applied, pending) {
  if (pending) return "applying filters…";
  const d = describe(applied);
  const parts = [];
  if (d.level.startsWith("min:")) parts.push(`${d.level.slice(4)} or worse`);
  else if (d.level) parts.push(`level ${d.level}`);
  if (d.environment) parts.push(`env ${d.environment}`);
  return parts.length ? `filtered: ${parts.join(" · ")}` : "all events";
}
