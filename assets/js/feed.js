// @ts-check
// The live feed: the newest events (at most 200, newest first) that pass the filters the
// server applies, and the filter controls (level, environment), sent as `subscribe`
// messages when they differ from what the server confirmed. Above the project view, a
// notice of the events that never arrived: those the rate limit refused in the last hour.

import { api, currentGeneration, projectPath } from "./api.js";
import { send, isOpen } from "./connection.js";
import { byId, h, reconcile } from "./dom.js";
import { levelOf, shortTime } from "./format.js";
import { filterLabel, describe, matches, sameFilters, wantedFilters } from "./filters.js";
import { schedule } from "./schedule.js";

/** @typedef {import("./filters.js").Filters} Filters */
/** @typedef {import("./api.js").ListedEvent} ListedEvent */
/** @typedef {{ seq: number, issueId: number, event: ListedEvent }} Row */

/** Most events the feed shows (and the backfill reads). */
export const FEED_CAP = 200;

const ui = {
  filterForm: byId("filter-form", HTMLFormElement),
  level: byId("level-filter", HTMLSelectElement),
  env: byId("env-filter", HTMLInputElement),
  filterStatus: byId("filter-status", HTMLSpanElement),
  feed: byId("feed", HTMLOListElement),
  feedEmpty: byId("feed-empty", HTMLParagraphElement),
  rateNotice: byId("rate-limit-notice", HTMLParagraphElement),
};

/** The filters the server confirmed. @type {Filters} */
let applied = {};
/** A `subscribe` is on its way. */
let pending = false;
/** @type {Row[]} newest (highest seq) first */
let rows = [];
/** @type {Map<number, HTMLLIElement>} seq → row */
const shown = new Map();
let envTimer = 0;

/** Wires the filter controls. */
export function initFeed() {
  ui.level.addEventListener("change", () => {
    renderFilterStatus();
    syncFilters();
  });
  ui.env.addEventListener("input", () => {
    clearTimeout(envTimer);
    envTimer = setTimeout(syncFilters, 400);
  });
  ui.env.addEventListener("change", () => {
    clearTimeout(envTimer);
    syncFilters();
  });
  ui.filterForm.addEventListener("submit", (e) => {
    e.preventDefault();
    clearTimeout(envTimer);
    syncFilters();
  });
}

/** The filters the controls ask for, as a `subscribe` message's `filters`. */
export function wanted() {
  return wantedFilters(ui.level.value, ui.env.value);
}

/**
 * Whether an issue of `level` passes the applied level filters (its triggering event will
 * then reach this view).
 * @param {string | undefined} level
 */
export function levelPasses(level) {
  return matches({ level }, { level: applied.level, min_level: applied.min_level });
}

export function renderFilterStatus() {
  const d = describe(applied);
  const el = ui.filterStatus;
  el.dataset.level = d.level;
  el.dataset.environment = d.environment;
  el.dataset.state = pending ? "pending" : "applied";
  el.textContent = filterLabel(applied, pending);
}

/** Sends the controls' filters when they differ from what the server applies. */
export function syncFilters() {
  if (pending || !isOpen()) return;
  const filters = wanted();
  if (sameFilters(filters, applied)) return;
  pending = send({ type: "subscribe", filters });
  renderFilterStatus();
}

/**
 * The server applies `filters` (a new stream's `subscribed`).
 * @param {Filters} filters
 */
export function setApplied(filters) {
  applied = filters;
  pending = false;
  renderFilterStatus();
}

/**
 * The server confirmed a change of filters (`filters_updated`): the feed keeps what they
 * let through.
 * @param {Filters | undefined} filters
 */
export function confirmFilters(filters) {
  pending = false;
  applied = filters ?? {};
  const kept = rows.filter((row) => matches(row.event, applied));
  if (kept.length !== rows.length) {
    rows = kept;
    schedule(renderFeed);
  }
  renderFilterStatus();
  syncFilters(); // the controls may have moved on meanwhile
}

/** No change of filters is on its way any more (the stream closed, or refused it). */
export function dropPending() {
  pending = false;
}

/**
 * An event for the feed, when it passes the filters.
 * @param {number} seq
 * @param {number} issueId
 * @param {ListedEvent} event
 */
export function addToFeed(seq, issueId, event) {
  if (!matches(event, applied)) return;
  const row = { seq, issueId, event };
  const at = rows.findIndex((r) => r.seq < seq);
  if (at === -1) rows.push(row);
  else rows.splice(at, 0, row);
  if (rows.length > FEED_CAP) rows.length = FEED_CAP;
  schedule(renderFeed);
}

/**
 * The notice of events refused by the rate limit (429) in the last hour, as `/stats`
 * counts them; hidden when none were.
 * @param {unknown} refused
 * @param {unknown} limit
 */
export function showRefused(refused, limit) {
  const n = typeof refused === "number" ? refused : 0;
  ui.rateNotice.hidden = n <= 0;
  ui.rateNotice.dataset.count = String(n);
  if (n <= 0) return;
  const events = n === 1 ? "1 event was" : `${n.toLocaleString("en")} events were`;
  const per = typeof limit === "number" && limit > 0 ? ` (limit ${limit.toLocaleString("en")}/min)` : "";
  ui.rateNotice.textContent = `${events} refused by the rate limit in the last hour${per}.`;
}

/** Reads how many events the rate limit refused in the last hour. */
export async function loadRefused() {
  const gen = currentGeneration();
  let body;
  try {
    body = await api(projectPath("/stats?minutes=1"));
  } catch {
    return; // read again with the other counts
  }
  if (gen === currentGeneration()) showRefused(body?.rate_limited_last_hour, body?.rate_limit);
}

/** Empties the feed (a new connection). */
export function resetFeed() {
  showRefused(0, 0);
  applied = {};
  rows = [];
  for (const li of shown.values()) li.remove();
  shown.clear();
  schedule(renderFeed);
}

/** @param {Row} row */
function feedRow(row) {
  const e = row.event;
  const level = levelOf(e.level);
  const meta = h(
    "p",
    { class: "feed-meta" },
    h("span", { class: "env", title: "environment", text: e.environment || "production" }),
  );
  if (e.release) meta.append(h("span", { class: "release", title: "release", text: e.release }));
  meta.append(h("time", { datetime: e.timestamp, title: e.timestamp, text: shortTime(e.timestamp) }));
  const title = e.title || e.message;
  return h(
    "li",
    {
      class: `feed-row level-${level}`,
      "data-testid": "feed-row",
      "data-seq": row.seq,
      "data-level": level,
      "data-issue-id": row.issueId,
    },
    h("span", { class: `badge badge-${level}`, text: level }),
    h("div", { class: "feed-body" }, h("p", { class: "feed-title", title, text: title || "(no title)" }), meta),
  );
}

export function renderFeed() {
  reconcile(ui.feed, shown, rows, { key: (r) => r.seq, make: feedRow, element: (li) => li });
  ui.feedEmpty.hidden = rows.length > 0;
}
