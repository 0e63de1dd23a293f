// @ts-check
// The issue view: one issue (its head, status buttons and events per minute), its tag
// breakdown, and one of its events in full (drawn by ../event.js), stepped through with
// Older/Newer/Newest or j/k. Live events of the issue count at once and can be stepped to.

import { actionButtons, actionKind } from "./actions.js";
import { api, messageOf, projectPath, statusOf } from "./api.js";
import { CHART_MINUTES, bump, drawChart, minuteOf, minutesFrom } from "./chart.js";
import { byId, h } from "./dom.js";
import { levelOf, plural, shortTime } from "./format.js";
import { actedOn, focusRow, hashFor, knownIssue } from "./list.js";
import { schedule } from "./schedule.js";
import { isRegressed } from "./search.js";
import { renderEvent } from "../event.js";

/** @typedef {import("./api.js").Issue} Issue */
/** @typedef {import("./api.js").ListedEvent} ListedEvent */
/** @typedef {import("./chart.js").Minutes} Minutes */
/**
 * The open issue: its id, the event shown, and what arrived since.
 * @typedef {{
 *   id: number, issue: Issue | null, eventId: string | null, event: ListedEvent | null,
 *   minutes: Minutes, gen: number,
 *   older: { id: string } | null, newer: { id: string } | null,
 *   arrived: number, expectTrigger: boolean, fromList: boolean, headKind: string,
 * }} View
 */

const ui = {
  listView: byId("list-view", HTMLDivElement),
  issueView: byId("issue-view", HTMLElement),
  back: byId("back-link", HTMLAnchorElement),
  issueLevel: byId("issue-level", HTMLSpanElement),
  issueStatus: byId("issue-status", HTMLSpanElement),
  issueRegressed: byId("issue-regressed", HTMLSpanElement),
  issueTitle: byId("issue-title", HTMLHeadingElement),
  issueCulprit: byId("issue-culprit", HTMLParagraphElement),
  issueCount: byId("issue-event-count", HTMLElement),
  issueFirst: byId("issue-first-seen", HTMLTimeElement),
  issueLast: byId("issue-last-seen", HTMLTimeElement),
  issueActions: byId("issue-actions", HTMLDivElement),
  issueChart: byId("issue-chart", HTMLDivElement),
  issueChartPeak: byId("issue-chart-peak", HTMLSpanElement),
  older: byId("older-button", HTMLButtonElement),
  newer: byId("newer-button", HTMLButtonElement),
  newest: byId("newest-button", HTMLButtonElement),
  newEvents: byId("new-events", HTMLParagraphElement),
  eventError: byId("event-error", HTMLParagraphElement),
  eventContent: byId("event-content", HTMLDivElement),
  tags: byId("tag-breakdown", HTMLUListElement),
  tagsEmpty: byId("tags-empty", HTMLParagraphElement),
};

/** @type {View | null} null on the list */
let view = null;
/** @type {() => void} */
let onClose = () => {};

/**
 * Wires the view's buttons and keys; `closed` hears of the return to the list.
 * @param {{ closed: () => void }} hooks
 */
export function initIssueView({ closed }) {
  onClose = closed;
  ui.older.addEventListener("click", () => stepTo("older"));
  ui.newer.addEventListener("click", () => stepTo("newer"));
  ui.newest.addEventListener("click", () => stepTo("newest"));
  ui.back.addEventListener("click", (e) => {
    // Opened from the list: going back is the browser's Back, so history does not grow.
    if (view?.fromList) {
      e.preventDefault();
      history.back();
    }
  });
  addEventListener("keydown", (e) => {
    if (!view || e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey) return;
    const t = e.target;
    if (t instanceof HTMLElement && (t.isContentEditable || /^(INPUT|SELECT|TEXTAREA)$/.test(t.tagName))) return;
    // j/k step like in Sentry and mail readers; Escape returns to the list.
    if (e.key === "j" && !ui.older.disabled) stepTo("older");
    else if (e.key === "k" && !ui.newer.disabled) stepTo("newer");
    else if (e.key === "Escape") ui.back.click();
  });
}

/**
 * Opens issue `id` on event `eventId` (its newest when null).
 * @param {number} id
 * @param {string | null} eventId
 * @param {{ fromList?: boolean }} [options]
 */
export function openIssue(id, eventId, { fromList = false } = {}) {
  if (view?.id === id && view.eventId === eventId) return;
  if (view?.id !== id) {
    view = {
      id,
      issue: knownIssue(id),
      eventId,
      event: null,
      minutes: new Map(),
      gen: 0,
      older: null, // the listed events either side of the one shown
      newer: null,
      arrived: 0, // events of this issue that arrived live since the shown one was loaded
      expectTrigger: false,
      fromList,
      headKind: "",
    };
    ui.listView.hidden = true;
    ui.issueView.hidden = false;
    ui.tags.replaceChildren();
    ui.tagsEmpty.hidden = true;
    ui.eventContent.replaceChildren();
    ui.newEvents.hidden = true;
    ui.eventError.hidden = true;
    schedule(renderChart);
    renderIssueHead();
    scrollTo(0, 0);
    ui.issueTitle.focus({ preventScroll: true });
    loadIssue(view);
    loadIssueStats();
    loadTags(view);
  }
  ui.back.href = hashFor();
  showEvent(view, eventId);
}

/** Back to the list. */
export function closeIssue() {
  const closing = view;
  if (!closing) return;
  view = null;
  ui.issueView.hidden = true;
  ui.listView.hidden = false;
  document.title = "Mesher · live dashboard";
  // Back on the list, the keyboard is where it was: on the issue's link.
  focusRow(closing.id);
  onClose();
}

/**
 * What the list learned of an issue: the open one's head follows.
 * @param {Issue} issue
 */
export function mergeIssue(issue) {
  if (view?.id !== issue.id) return;
  view.issue = { ...(view.issue ?? {}), ...issue };
  renderIssueHead();
}

/**
 * The `issue` message of a new or regressed issue counted its triggering event.
 * @param {number} id
 */
export function expectTriggerOf(id) {
  if (view?.id === id) view.expectTrigger = true;
}

/** @param {View} v */
async function loadIssue(v) {
  try {
    const body = await api(`/api/v1/issues/${v.id}`);
    if (view !== v || !body?.issue) return;
    v.issue = { ...(v.issue ?? {}), ...body.issue };
    renderIssueHead();
  } catch (err) {
    if (view !== v) return;
    ui.issueTitle.textContent = statusOf(err) === 404 ? `Issue ${v.id} does not exist` : `Issue ${v.id}`;
    showViewError(`Could not load issue ${v.id}: ${messageOf(err)}`);
  }
}

/** Reads the open issue's events per minute (and its count). */
export async function loadIssueStats() {
  const v = view;
  if (!v) return;
  try {
    const body = await api(`/api/v1/issues/${v.id}/stats?minutes=${CHART_MINUTES}`);
    if (view !== v || !Array.isArray(body?.minutes)) return;
    v.minutes = minutesFrom(body.minutes);
    if (v.issue && typeof body.event_count === "number") {
      v.issue.event_count = Math.max(v.issue.event_count ?? 0, body.event_count);
      renderIssueHead();
    }
    schedule(renderChart);
  } catch {
    // The chart waits for the next reading.
  }
}

/**
 * One tag key's values, most common first, with their shares.
 * @param {{ key: string, total: number, values?: { value: string, count: number }[] }} tag
 */
function tagItem(tag) {
  const values = h("ol", { class: "tag-values" });
  for (const v of tag.values ?? []) {
    const share = tag.total ? Math.round((100 * v.count) / tag.total) : 0;
    values.append(
      h(
        "li",
        { "data-testid": "tag-value", "data-value": v.value, "data-count": v.count },
        h("span", { class: "tag-value", title: v.value, text: v.value }),
        h("span", { class: "tag-count", text: `${v.count} · ${share}%` }),
        h("meter", { min: 0, max: tag.total || 1, value: v.count, "aria-label": `${v.value}: ${share}%` }),
      ),
    );
  }
  return h(
    "li",
    { class: "tag-key", "data-testid": "tag-key", "data-key": tag.key, "data-total": tag.total },
    h(
      "p",
      { class: "tag-head" },
      h("code", { text: tag.key }),
      h("span", { class: "muted", text: plural(tag.total, "event", "events") }),
    ),
    values,
  );
}

/** @param {View} v */
async function loadTags(v) {
  let body;
  try {
    body = await api(`/api/v1/issues/${v.id}/tags`);
  } catch {
    return;
  }
  if (view !== v || !Array.isArray(body?.tags)) return;
  const items = body.tags.map(tagItem);
  ui.tags.replaceChildren(...items);
  ui.tagsEmpty.hidden = items.length > 0;
}

function renderIssueHead() {
  const issue = view?.issue;
  if (!view || !issue) {
    // Nothing of another issue may stay on screen (its buttons would act on it).
    ui.issueTitle.textContent = view ? `Issue ${view.id}` : "";
    for (const el of [ui.issueLevel, ui.issueStatus, ui.issueCulprit, ui.issueFirst, ui.issueLast]) el.textContent = "";
    ui.issueLevel.className = "badge";
    ui.issueRegressed.hidden = true;
    ui.issueCount.textContent = "–";
    ui.issueCount.dataset.count = "";
    ui.issueActions.replaceChildren();
    ui.issueView.dataset.issueId = view ? String(view.id) : "";
    if (view) view.headKind = "";
    return;
  }
  const lvl = levelOf(issue.level);
  const status = issue.status ?? "";
  ui.issueLevel.className = `badge badge-${lvl}`;
  ui.issueLevel.textContent = lvl;
  ui.issueStatus.className = `status state-${status}`;
  ui.issueStatus.textContent = status;
  ui.issueView.dataset.status = status;
  // A new event reopened it (SPEC §3): marked until its status is changed by hand, or 7 days.
  const regressed = isRegressed(issue, Date.now());
  ui.issueRegressed.hidden = !regressed;
  ui.issueView.dataset.regressed = String(regressed);
  ui.issueView.dataset.issueId = String(issue.id);
  ui.issueTitle.textContent = issue.title || "(no title)";
  ui.issueCulprit.textContent = issue.culprit || "";
  ui.issueCulprit.hidden = !issue.culprit;
  ui.issueCount.textContent = String(issue.event_count ?? 0);
  ui.issueCount.dataset.count = String(issue.event_count ?? 0);
  ui.issueFirst.textContent = shortTime(issue.first_seen);
  ui.issueFirst.dateTime = issue.first_seen ?? "";
  ui.issueLast.textContent = shortTime(issue.last_seen);
  ui.issueLast.dateTime = issue.last_seen ?? "";
  document.title = `${issue.title || "Issue"} · Mesher`;
  if (view.headKind !== actionKind(issue, true)) {
    const hadFocus = ui.issueActions.contains(document.activeElement);
    const made = actionButtons(issue, () => (view?.id === issue.id ? view.issue : null) ?? issue, {
      withDiscard: true,
      changed: actedOn,
    });
    view.headKind = made.kind;
    ui.issueActions.replaceChildren(...made.buttons);
    if (hadFocus) made.buttons[0].focus({ preventScroll: true });
  }
}

/** @param {string} message */
function showViewError(message) {
  ui.eventError.textContent = message;
  ui.eventError.hidden = false;
}

/**
 * The first event of an events answer (null when there is none, or no answer).
 * @param {Promise<any>} answer
 * @returns {Promise<{ id: string } | null>}
 */
async function firstEvent(answer) {
  const body = await answer.catch(() => null);
  return body?.events?.[0] ?? null;
}

/**
 * Loads and draws one event of the open issue: `eventId`, or the newest when null.
 * @param {View} v
 * @param {string | null} eventId
 */
async function showEvent(v, eventId) {
  const gen = ++v.gen;
  v.eventId = eventId;
  ui.eventError.hidden = true;
  ui.eventContent.setAttribute("aria-busy", "true");
  for (const b of [ui.older, ui.newer, ui.newest]) b.disabled = true;
  const current = () => view === v && v.gen === gen;
  try {
    let id = eventId;
    if (!id) {
      const list = await api(`/api/v1/issues/${v.id}/events?limit=1`);
      if (!current()) return;
      id = list?.events?.[0]?.id;
      if (!id) {
        ui.eventContent.replaceChildren(h("p", { class: "empty", text: "No stored events for this issue." }));
        return;
      }
    }
    const body = await api(projectPath(`/events/${encodeURIComponent(id)}`));
    if (!current()) return;
    /** @type {ListedEvent | undefined} */
    const event = body?.event;
    if (!event) throw new Error("the answer has no event");
    if (event.issue_id !== v.id) {
      showViewError(`Event ${id} belongs to issue ${event.issue_id}, not to issue ${v.id}.`);
      ui.eventContent.replaceChildren();
      return;
    }
    v.event = event;
    v.arrived = 0;
    ui.newEvents.hidden = true;
    // A failed lookup only leaves that button off; the event still shows.
    const [older, newer] = await Promise.all([
      firstEvent(api(`/api/v1/issues/${v.id}/events?before=${event.seq}&limit=1`)),
      firstEvent(api(`/api/v1/issues/${v.id}/events?after=${event.seq}&limit=1`)),
    ]);
    if (!current()) return;
    v.older = older;
    v.newer = newer;
    ui.eventContent.dataset.eventId = event.id;
    ui.eventContent.dataset.seq = String(event.seq);
    ui.eventContent.replaceChildren(renderEvent(event.data, event));
    renderStepping();
  } catch (err) {
    if (!current()) return;
    ui.eventContent.replaceChildren();
    ui.older.disabled = !v.older;
    ui.newer.disabled = !v.newer;
    ui.newest.disabled = false;
    showViewError(
      statusOf(err) === 404
        ? `Event ${eventId} was not found in this project.`
        : `Could not load the event: ${messageOf(err)}`,
    );
  } finally {
    if (current()) ui.eventContent.setAttribute("aria-busy", "false");
  }
}

function renderStepping() {
  if (!view?.event) return;
  ui.older.disabled = !view.older;
  ui.newer.disabled = !view.newer && view.arrived === 0;
  ui.newest.disabled = !view.newer && view.arrived === 0;
  ui.newEvents.hidden = view.arrived === 0;
  ui.newEvents.textContent = `${plural(view.arrived, "newer event has", "newer events have")} arrived since this one was opened.`;
}

/**
 * Steps to the older or newer neighbour, or to the newest event. The address follows
 * (replacing, so Back still returns to the list).
 * @param {"older" | "newer" | "newest"} which
 */
async function stepTo(which) {
  const v = view;
  if (!v?.event) return;
  /** @type {string | null | undefined} */
  let target = null;
  if (which === "older") target = v.older?.id;
  else if (which === "newer") {
    target = v.newer?.id;
    if (!target) {
      // It arrived live after the neighbours were read.
      const next = await firstEvent(api(`/api/v1/issues/${v.id}/events?after=${v.event.seq}&limit=1`));
      if (view !== v) return;
      target = next?.id;
    }
  }
  if (which !== "newest" && !target) return;
  const eventId = which === "newest" ? null : (target ?? null);
  history.replaceState(null, "", hashFor({ issue: v.id, event: eventId }));
  showEvent(v, eventId);
}

/**
 * A live event: if it belongs to the open issue, its count grows and a newer event can be
 * stepped to.
 * @param {number} issueId
 * @param {{ level?: string }} event
 */
export function viewEvent(issueId, event) {
  if (!view || view.id !== issueId) return;
  const listed = knownIssue(issueId);
  if (view.issue) {
    if (listed) {
      view.issue.event_count = Math.max(view.issue.event_count ?? 0, listed.event_count ?? 0);
      view.expectTrigger = false;
    } else if (view.expectTrigger) view.expectTrigger = false;
    else view.issue.event_count = (view.issue.event_count ?? 0) + 1;
    view.issue.last_seen = new Date().toISOString();
    renderIssueHead();
  }
  bump(view.minutes, minuteOf(), event.level);
  view.arrived++;
  if (view.event) renderStepping();
  schedule(renderChart);
}

export function renderChart() {
  if (view) drawChart(ui.issueChart, ui.issueChartPeak, view.minutes);
}
