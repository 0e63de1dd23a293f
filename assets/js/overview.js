// @ts-check
// The overview card: the project's unresolved count and its events per minute, as the
// server counted them (read every few seconds and kept current by the stream), not what
// this page received (which falls behind in a storm).

import { api, currentGeneration, projectPath } from "./api.js";
import { CHART_MINUTES, bump, drawChart, minuteOf, minutesFrom } from "./chart.js";
import { byId } from "./dom.js";
import { schedule } from "./schedule.js";

/** @typedef {import("./chart.js").Minutes} Minutes */

const ui = {
  count: byId("issue-count", HTMLSpanElement),
  chart: byId("chart", HTMLDivElement),
  chartPeak: byId("chart-peak", HTMLSpanElement),
};

/** @type {number | null} */
let unresolved = null;
/** Bumped on every `issue_count` message: a count read before it is older. */
let countStamp = 0;
/** @type {Minutes} */
let minutes = new Map();

/** The unresolved count shown (null: not known). */
export function unresolvedCount() {
  return unresolved;
}

/** A mark to tell later whether the stream sent a count meanwhile ({@link countChangedSince}). */
export function countMark() {
  return countStamp;
}

/**
 * Whether the stream sent a count since `mark`.
 * @param {number} mark
 */
export function countChangedSince(mark) {
  return countStamp !== mark;
}

/**
 * Shows the unresolved count (`text` in its place when given, e.g. `100+`).
 * @param {number | null} n
 * @param {string | null} [text]
 */
export function setCount(n, text = null) {
  unresolved = n;
  ui.count.textContent = text ?? (n === null ? "–" : String(n));
  ui.count.dataset.count = n === null ? "" : String(n);
}

/**
 * The stream's `issue_count`.
 * @param {unknown} n
 */
export function countMessage(n) {
  countStamp++;
  if (typeof n === "number") setCount(n);
}

/**
 * A live event, counted in the minute it arrived until the server's counts replace it.
 * @param {unknown} level
 */
export function countLive(level) {
  bump(minutes, minuteOf(), level);
  schedule(renderChart);
}

/** Reads the unresolved count and the events per minute. */
export async function loadStats() {
  const gen = currentGeneration();
  const stamp = countStamp;
  let body;
  try {
    body = await api(projectPath(`/stats?minutes=${CHART_MINUTES}`));
  } catch {
    return; // the stream's counts still arrive
  }
  if (gen !== currentGeneration() || !Array.isArray(body?.minutes)) return;
  // A count the stream sent meanwhile is newer than this answer.
  if (countStamp === stamp && typeof body.unresolved === "number") setCount(body.unresolved);
  minutes = minutesFrom(body.minutes);
  schedule(renderChart);
}

export function renderChart() {
  drawChart(ui.chart, ui.chartPeak, minutes);
}

/** Forgets the counts (a new connection). */
export function resetOverview() {
  minutes.clear();
  countStamp = 0;
  setCount(null);
  schedule(renderChart);
}
