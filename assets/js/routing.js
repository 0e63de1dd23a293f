// @ts-check
// The address fragment holds the view (never the token, once connected):
// `#project=<id>[&query=…][&sort=…][&issue=<id>[&event=<event id>]]`, so a view can be
// linked to and the back button returns from an issue to the list; a project's settings
// page is `#project=<id>&view=settings`. A link may carry
// `&token=…` to connect; the page drops it from the address. Pure: no DOM, no state.

import { DEFAULT_QUERY, sortOf } from "./search.js";

/** @typedef {import("./search.js").Sort} Sort */
/**
 * What a fragment asks for.
 * @typedef {{ any: boolean, project: string, token: string, query: string, sort: Sort,
 *   issue: number | null, event: string }} Fragment
 */

/**
 * A positive whole number of at most 19 digits: a project's or an issue's id.
 * @param {string} value
 */
export function validId(value) {
  return /^[1-9][0-9]{0,18}$/.test(value);
}

/**
 * Reads a fragment (`location.hash`, with or without its `#`).
 * @param {string} hash
 * @returns {Fragment}
 */
export function parseFragment(hash) {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  /** @param {string} k */
  const get = (k) => (params.get(k) ?? "").trim();
  const issue = get("issue");
  return {
    any: [...params.keys()].length > 0,
    project: get("project"),
    token: get("token"),
    query: params.has("query") ? get("query") : DEFAULT_QUERY,
    sort: sortOf(get("sort")),
    issue: validId(issue) ? Number(issue) : null,
    event: get("event"),
  };
}

/**
 * The fragment of a view: the list (its search and sort when not the defaults) and, with
 * `issue`, that issue (on `event`, or its newest).
 * @param {{ project: string | null, query: string, sort: Sort, issue?: number | null, event?: string | null }} view
 */
export function viewHash({ project, query, sort, issue = null, event = null }) {
  const params = new URLSearchParams({ project: project ?? "" });
  if (query !== DEFAULT_QUERY) params.set("query", query);
  if (sort !== "last_seen") params.set("sort", sort);
  if (issue !== null) params.set("issue", String(issue));
  if (event) params.set("event", event);
  return `#${params}`;
}

/**
 * The settings page of `project`: `#project=<id>&view=settings`.
 * @param {string} project
 */
export function settingsHash(project) {
  return `#${new URLSearchParams({ project, view: "settings" })}`;
}

/**
 * Whether a fragment asks for a project's settings page (`view=settings`).
 * @param {string} hash
 */
export function wantsSettings(hash) {
  return new URLSearchParams(hash.replace(/^#/, "")).get("view") === "settings";
}
