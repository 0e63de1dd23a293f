// @ts-check
// The issue list: what the search finds (read from the server 100 at a time, "Load more"
// following the answer's Link cursor to the next page), kept current by the stream (`issue`
// messages, live events counted on their issue) and sorted here as the server sorts. The
// search box and the sort: the list follows them, the address keeps them (routing.js).

import { api, apiPage, currentGeneration, currentProject, messageOf, projectPath, statusOf } from "./api.js";
import { actionButtons, actionKind } from "./actions.js";
import { isOpen } from "./connection.js";
import { byId, h, reconcile } from "./dom.js";
import { levelOf, plural, shortTime } from "./format.js";
import { showError } from "./notices.js";
import { setCount, unresolvedCount } from "./overview.js";
import { viewHash } from "./routing.js";
import { schedule } from "./schedule.js";
import { DEFAULT_QUERY, compareIssues, localFilter, sortOf } from "./search.js";

/** @typedef {import("./api.js").Issue} Issue */
/** @typedef {import("./search.js").Sort} Sort */
/**
 * A row's parts, updated in place; `key` names its set of buttons.
 * @typedef {{ li: HTMLLIElement, level: HTMLSpanElement, title: HTMLAnchorElement,
 *   culprit: HTMLParagraphElement, status: HTMLSpanElement, count: HTMLSpanElement,
 *   seen: HTMLTimeElement, actions: HTMLDivElement, key: string }} Row
 */

const ISSUE_LIMIT = 100;

const ui = {
  issues: byId("issue-list", HTMLUListElement),
  issuesEmpty: byId("issues-empty", HTMLParagraphElement),
  issuesNote: byId("issues-note", HTMLSpanElement),
  searchForm: byId("search-form", HTMLFormElement),
  search: byId("search-input", HTMLInputElement),
  sort: byId("sort-select", HTMLSelectElement),
  searchError: byId("search-error", HTMLParagraphElement),
};

/** @type {Map<number, { issue: Issue, touched: number }>} */
let issues = new Map();
/** @type {Map<number, Row>} */
const rows = new Map();
/** Issues whose triggering event is still to come (their `issue` message counted it). */
const expectTrigger = new Set();
const fetching = new Set();
/** Issues this session changed: kept in the list so that they can be undone. */
const acted = new Set();
let query = DEFAULT_QUERY;
/** @type {Sort} */
let sort = "last_seen";
/** Timer: the list is read again when the search cannot be judged here. */
let listReload = 0;
/** @type {(issue: Issue) => void} */
let onUpsert = () => {};
/** The cursor of the next page of the search (null: none, or the last page is shown). */
let nextPage = /** @type {string | null} */ (null);
/** Pages read so far: a reload reads as many again. */
let pages = 1;
/** Issues the pages held (the list may hold more: live ones). */
let loaded = 0;
/** The "Load more" button under the list (made by `initList`). */
let moreButton = /** @type {HTMLButtonElement | null} */ (null);

/**
 * Wires the search form; `upserted` hears of every issue the list learns about, `followed`
 * of a row's link followed (in this tab).
 * @param {{ upserted: (issue: Issue) => void, followed: () => void }} hooks
 */
export function initList({ upserted, followed }) {
  onUpsert = upserted;
  ui.searchForm.addEventListener("submit", (e) => {
    e.preventDefault();
    applySearch();
  });
  ui.sort.addEventListener("change", applySearch);
  moreButton = h("button", { type: "button", class: "load-more", "data-testid": "load-more", hidden: true }, "Load more");
  moreButton.addEventListener("click", loadMore);
  ui.issues.after(moreButton);
  ui.issues.addEventListener("click", (e) => {
    // A click that opens a new tab or window navigates nothing here.
    if (e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
    if (e.target instanceof Element && e.target.closest("a.issue-title")) followed();
  });
}

/**
 * The address of a view of this project with the list's search (`issue`, `event` optional).
 * @param {{ issue?: number | null, event?: string | null }} [view]
 */
export function hashFor({ issue = null, event = null } = {}) {
  return viewHash({ project: currentProject(), query, sort, issue, event });
}

/**
 * Shows this search and sort (from the address); true when they changed.
 * @param {string} newQuery
 * @param {Sort} newSort
 */
export function showSearch(newQuery, newSort) {
  const changed = newQuery !== query || newSort !== sort;
  query = newQuery;
  sort = newSort;
  ui.search.value = newQuery;
  ui.sort.value = newSort;
  return changed;
}

/** Empties the list and reads it again (while connected). */
export function reloadList() {
  issues.clear();
  schedule(renderIssues);
  if (isOpen()) loadIssues();
}

/** The search box and the sort changed. */
function applySearch() {
  const newQuery = ui.search.value.trim();
  const newSort = sortOf(ui.sort.value);
  if (newQuery === query && newSort === sort) return;
  query = newQuery;
  sort = newSort;
  history.replaceState(null, "", hashFor());
  issues.clear();
  pages = 1;
  showMore(null);
  schedule(renderIssues);
  loadIssues();
}

/**
 * The issue as the list knows it.
 * @param {number} id
 */
export function knownIssue(id) {
  return issues.get(id)?.issue ?? null;
}

/**
 * Merges what is known of an issue: into the list when it is there or belongs there.
 * @param {Issue} issue
 * @param {boolean} [touched]
 */
export function upsertIssue(issue, touched = true) {
  const known = issues.get(issue.id);
  const merged = { ...(known?.issue ?? {}), ...issue };
  if (known) {
    issues.set(issue.id, { issue: merged, touched: touched ? performance.now() : known.touched });
  } else {
    const belongs = localFilter(query);
    if (belongs === null) reloadListSoon();
    else if (belongs(merged)) issues.set(issue.id, { issue: merged, touched: touched ? performance.now() : 0 });
  }
  onUpsert(issue);
  schedule(renderIssues);
}

/**
 * After a click on a status button: the issue as the server now has it (kept in the list
 * so that it can be undone), or null when the change failed.
 * @param {Issue | null} issue
 */
export function actedOn(issue) {
  if (issue) {
    acted.add(issue.id);
    upsertIssue(issue);
  }
  schedule(renderIssues);
}

/**
 * The `issue` message of a new or regressed issue counted its triggering event, which
 * comes right after: it is not counted again.
 * @param {number} id
 */
export function expectTriggerOf(id) {
  expectTrigger.add(id);
}

/** The search depends on stored events: read the list again (at most every 2 s). */
function reloadListSoon() {
  if (listReload) return;
  listReload = setTimeout(() => {
    listReload = 0;
    loadIssues();
  }, 2_000);
}

/**
 * An event for `issueId` arrived live: one more event, seen now.
 * @param {number} issueId
 * @param {{ level?: string }} event
 */
export function countEvent(issueId, event) {
  if (expectTrigger.delete(issueId)) return; // the `issue` message counted it already
  const known = issues.get(issueId);
  if (!known) {
    fetchIssue(issueId);
    return;
  }
  const issue = known.issue;
  issue.event_count = (issue.event_count ?? 0) + 1;
  issue.level = event.level ?? issue.level;
  const now = new Date().toISOString();
  if (!issue.last_seen || now > issue.last_seen) issue.last_seen = now;
  schedule(renderIssues);
}

/** @param {number} id */
async function fetchIssue(id) {
  if (fetching.has(id)) return;
  fetching.add(id);
  const gen = currentGeneration();
  try {
    const body = await api(`/api/v1/issues/${id}`);
    if (gen === currentGeneration() && body?.issue && !issues.has(id)) upsertIssue(body.issue);
  } catch {
    // Shown on the next refresh of the list.
  } finally {
    fetching.delete(id);
  }
}

/**
 * A page of the search: the first, or the one `cursor` names.
 * @param {string | null} [cursor]
 */
function issuesPath(cursor = null) {
  const params = new URLSearchParams({ limit: String(ISSUE_LIMIT), sort });
  if (query.trim()) params.set("query", query.trim());
  if (cursor) params.set("cursor", cursor);
  return projectPath(`/issues?${params}`);
}

/**
 * Shows the "Load more" button while the search has a next page.
 * @param {string | null} next
 */
function showMore(next) {
  nextPage = next;
  if (!moreButton) return;
  moreButton.hidden = next === null;
  moreButton.removeAttribute("aria-disabled");
  moreButton.textContent = "Load more";
}

/** The note beside the heading: how many issues the pages held. */
function showNote() {
  ui.issuesNote.textContent = nextPage ? `${loaded} shown, more to load` : plural(loaded, "issue", "issues");
}

/**
 * Reads the search's pages (as many as were shown), all or nothing.
 * @returns {Promise<{ found: Issue[], next: string | null }>}
 */
async function readPages() {
  /** @type {Issue[]} */
  const found = [];
  /** @type {string | null} */
  let next = null;
  for (let page = 0; page < pages && (page === 0 || next); page++) {
    const answer = await apiPage(issuesPath(next));
    if (!Array.isArray(answer.body?.issues)) break;
    found.push(...answer.body.issues);
    next = answer.next;
  }
  return { found, next };
}

/** Loads the issues the search finds (the snapshot replaces the counts kept so far). */
export async function loadIssues() {
  const gen = currentGeneration();
  const asked = { query, sort };
  const stale = () => gen !== currentGeneration() || asked.query !== query || asked.sort !== sort;
  const started = performance.now();
  /** @type {{ found: Issue[], next: string | null }} */
  let read;
  try {
    read = await readPages();
  } catch (err) {
    if (stale()) return;
    if (statusOf(err) === 400) {
      ui.searchError.textContent = `The search was not understood: ${messageOf(err).replace(/^400: /, "")}`;
      ui.searchError.hidden = false;
    } else {
      showError(`Could not load the issues: ${messageOf(err)}`);
    }
    return;
  }
  if (stale()) return;
  const { found, next } = read;
  ui.searchError.hidden = true;
  const fresh = new Map();
  for (const issue of found) fresh.set(issue.id, { issue, touched: started });
  for (const [id, known] of issues) {
    // Keep what changed while the list was loading, and issues this session acted on
    // (so a resolved one can be reopened from its row).
    if (!fresh.has(id) && (known.touched > started || acted.has(id))) fresh.set(id, known);
  }
  issues = fresh;
  expectTrigger.clear();
  const unresolvedList = asked.query.trim() === DEFAULT_QUERY;
  if (unresolvedList && next === null) setCount(found.length);
  else if (unresolvedList && unresolvedCount() === null) setCount(null, `${found.length}+`);
  loaded = found.length;
  showMore(next);
  showNote();
  schedule(renderIssues);
}

/** "Load more": the search's next page, added under what the list shows. */
async function loadMore() {
  const cursor = nextPage;
  if (!cursor || !moreButton || moreButton.getAttribute("aria-disabled") === "true") return;
  const gen = currentGeneration();
  const asked = { query, sort };
  const stale = () =>
    gen !== currentGeneration() || asked.query !== query || asked.sort !== sort || nextPage !== cursor;
  // aria-disabled, not disabled: a disabled button would drop the keyboard's focus.
  moreButton.setAttribute("aria-disabled", "true");
  moreButton.textContent = "Loading…";
  const started = performance.now();
  let answer;
  try {
    answer = await apiPage(issuesPath(cursor));
  } catch (err) {
    if (stale()) return;
    showMore(cursor);
    showError(`Could not load more issues: ${messageOf(err)}`);
    return;
  }
  if (stale()) return;
  /** @type {Issue[]} */
  const found = Array.isArray(answer.body?.issues) ? answer.body.issues : [];
  // An issue already shown is kept as the list knows it (the stream kept it current).
  for (const issue of found) if (!issues.has(issue.id)) issues.set(issue.id, { issue, touched: started });
  pages += 1;
  loaded += found.length;
  const hadFocus = document.activeElement === moreButton;
  showMore(answer.next);
  showNote();
  renderIssues();
  // The button is gone after the last page: the keyboard goes on to the first new issue.
  if (hadFocus && answer.next === null && found.length > 0) focusRow(found[0].id);
}

/** @param {Issue} issue */
function issueRow(issue) {
  const li = h("li", { class: "issue-row", "data-testid": "issue-row", "data-issue-id": issue.id });
  const level = h("span", { class: "badge" });
  const title = h("a", { class: "issue-title", "data-testid": "issue-link" });
  const culprit = h("p", { class: "issue-culprit" });
  const status = h("span", { class: "status" });
  const count = h("span", { class: "issue-events", "data-testid": "issue-events" });
  const seen = h("time", { class: "issue-seen" });
  const actions = h("div", { class: "issue-actions" });
  li.append(
    h(
      "div",
      { class: "issue-main" },
      h("div", { class: "issue-line" }, level, title),
      culprit,
      h("p", { class: "issue-meta" }, count, seen, status),
    ),
    actions,
  );
  return { li, level, title, culprit, status, count, seen, actions, key: "" };
}

/**
 * @param {Row} p
 * @param {Issue} issue
 */
function updateIssueRow(p, issue) {
  const lvl = levelOf(issue.level);
  const status = issue.status ?? "";
  p.li.dataset.status = status;
  p.li.dataset.level = lvl;
  p.li.className = `issue-row level-${lvl} status-${status}`;
  p.level.className = `badge badge-${lvl}`;
  p.level.textContent = lvl;
  p.title.textContent = issue.title || "(no title)";
  p.title.title = issue.title || "";
  p.title.href = hashFor({ issue: issue.id });
  p.culprit.textContent = issue.culprit || "";
  p.culprit.hidden = !issue.culprit;
  p.count.textContent = plural(issue.event_count ?? 0, "event", "events");
  p.count.dataset.count = String(issue.event_count ?? 0);
  p.seen.textContent = `last seen ${shortTime(issue.last_seen)}`;
  p.seen.dateTime = issue.last_seen ?? "";
  p.status.textContent = status;
  p.status.className = `status state-${status}`;
  p.status.dataset.testid = "issue-status";
  if (p.key !== actionKind(issue, false)) {
    // Keep keyboard focus on the row when its buttons change.
    const hadFocus = p.actions.contains(document.activeElement);
    const made = actionButtons(issue, () => knownIssue(issue.id) ?? issue, { changed: actedOn });
    p.key = made.kind;
    p.actions.replaceChildren(...made.buttons);
    if (hadFocus) made.buttons[0].focus({ preventScroll: true });
  }
}

export function renderIssues() {
  const sorted = [...issues.values()]
    .map((x) => x.issue)
    .sort(compareIssues(sort))
    .slice(0, ISSUE_LIMIT * pages + 50);
  const focused = document.activeElement;
  reconcile(ui.issues, rows, sorted, {
    key: (issue) => issue.id,
    make: issueRow,
    element: (row) => row.li,
    update: updateIssueRow,
  });
  // Moving a row moves its focused button out of the document for a moment.
  if (focused instanceof HTMLElement && focused.isConnected && document.activeElement !== focused) {
    focused.focus({ preventScroll: true });
  }
  ui.issuesEmpty.hidden = sorted.length > 0;
  ui.issuesEmpty.textContent = query.trim() === DEFAULT_QUERY ? "No unresolved issues." : "No issues match this search.";
}

/**
 * Puts the keyboard on an issue's link (back from its view).
 * @param {number} id
 */
export function focusRow(id) {
  rows.get(id)?.title.focus({ preventScroll: true });
}

/** Empties the list (a new connection). */
export function resetList() {
  issues.clear();
  expectTrigger.clear();
  for (const row of rows.values()) row.li.remove();
  rows.clear();
  pages = 1;
  loaded = 0;
  showMore(null);
  ui.issuesNote.textContent = "";
  schedule(renderIssues);
}
