// @ts-check
// Events per minute and level over the last 30 minutes, as stacked bars: the project's
// (overview.js) and the open issue's (issue.js). The counting is pure; `drawChart` builds
// the SVG.

import { svg } from "./dom.js";
import { LEVELS, levelOf, pad, plural } from "./format.js";

export const MINUTE = 60_000;
export const CHART_MINUTES = 30;

/** @typedef {import("./format.js").Level} Level */
/** Counts by minute number (`ms / MINUTE`), then by level. @typedef {Map<number, Partial<Record<Level, number>>>} Minutes */
/** @typedef {{ minute: number, bucket: Partial<Record<Level, number>>, sum: number }} Column */

/**
 * The minute number of a time (the server counts events by the minute they arrived).
 * @param {number} [ms]
 */
export function minuteOf(ms = Date.now()) {
  return Math.floor(ms / MINUTE);
}

/**
 * Counts one event of `level` in `minute`.
 * @param {Minutes} minutes
 * @param {number} minute
 * @param {unknown} level
 */
export function bump(minutes, minute, level) {
  const bucket = minutes.get(minute) ?? {};
  const l = levelOf(level);
  bucket[l] = (bucket[l] ?? 0) + 1;
  minutes.set(minute, bucket);
}

/**
 * A stats answer's minutes (`[{start, total, levels}]`, start in ms) as {@link Minutes}.
 * @param {{ start: number, total?: number, levels?: Record<string, number> }[]} list
 * @returns {Minutes}
 */
export function minutesFrom(list) {
  /** @type {Minutes} */
  const minutes = new Map();
  for (const m of list) {
    if (!m.total) continue;
    /** @type {Partial<Record<Level, number>>} */
    const bucket = {};
    for (const [level, n] of Object.entries(m.levels ?? {})) {
      const l = levelOf(level);
      bucket[l] = (bucket[l] ?? 0) + n;
    }
    minutes.set(minuteOf(m.start), bucket);
  }
  return minutes;
}

/**
 * The chart's 30 columns up to `nowMinute` (older minutes are dropped from `minutes`),
 * with the busiest minute and the total.
 * @param {Minutes} minutes
 * @param {number} nowMinute
 */
export function columns(minutes, nowMinute) {
  const first = nowMinute - CHART_MINUTES + 1;
  for (const m of minutes.keys()) if (m < first) minutes.delete(m);
  /** @type {Column[]} */
  const cols = [];
  let peak = 0;
  let total = 0;
  for (let m = first; m <= nowMinute; m++) {
    const bucket = minutes.get(m) ?? {};
    const sum = LEVELS.reduce((s, l) => s + (bucket[l] ?? 0), 0);
    peak = Math.max(peak, sum);
    total += sum;
    cols.push({ minute: m, bucket, sum });
  }
  return { columns: cols, peak, total };
}

/**
 * Draws the chart of `minutes` into `el` (its `data-total` the events shown) and the peak
 * into `peakEl`.
 * @param {HTMLElement} el
 * @param {HTMLElement} peakEl
 * @param {Minutes} minutes
 */
export function drawChart(el, peakEl, minutes) {
  const { columns: cols, peak, total } = columns(minutes, minuteOf());
  const scale = Math.max(peak, 1);
  const W = 10;
  const H = 100;
  const root = svg("svg", {
    viewBox: `0 0 ${CHART_MINUTES * W} ${H}`,
    preserveAspectRatio: "none",
    role: "img",
    "aria-label": `${plural(total, "event", "events")} in the last 30 minutes, at most ${peak} in one minute`,
  });
  root.append(svg("line", { x1: 0, y1: H - 0.5, x2: CHART_MINUTES * W, y2: H - 0.5, class: "axis" }));
  cols.forEach((col, i) => {
    // A faint track per minute shows the scale when most minutes are empty.
    root.append(svg("rect", { x: i * W + 1, y: 0, width: W - 2, height: H, class: "track" }));
    if (!col.sum) return;
    const g = svg("g");
    const title = svg("title");
    const at = new Date(col.minute * MINUTE);
    title.textContent = `${pad(at.getHours())}:${pad(at.getMinutes())} · ${plural(col.sum, "event", "events")}`;
    g.append(title);
    let y = H;
    for (const level of LEVELS) {
      const n = col.bucket[level] ?? 0;
      if (!n) continue;
      const height = (n / scale) * (H - 4);
      y -= height;
      g.append(svg("rect", { x: i * W + 1, y, width: W - 2, height, class: `bar bar-${level}` }));
    }
    root.append(g);
  });
  el.replaceChildren(root);
  el.dataset.total = String(total);
  peakEl.textContent = peak ? `peak ${peak}/min` : "";
}
