// @ts-check
// The issue list: what the search finds (read from the server 100 at a time, "Load more"
// following the answer's Link cursor to the next page), kept current by the stream (`issue`
// messages, live events counted on their issue) and sorted here as the server sorts. An
// issue whose status (or level) no longer matches the search leaves at once, whoever
// changed it; one that comes to match joins. The note beside the heading is how many
// issues the search finds in all (the server's `total`; for `is:unresolved`, the project's
// unresolved count shown above), not how many rows are loaded. The search box and the
// sort: the list follows them, the address keeps them (routing.js). Each row has a
// checkbox: with two or more selected, the bar above the list merges them into one (the
// first selected, or the one chosen there); a merge announced by the stream takes the
// folded rows out and updates the merged one, whoever merged.

import { api, apiPage, currentGeneration, currentProject, messageOf, projectPath, statusOf } from "./api.js";
import { actionButtons, actionKind, mergeIssues } from "./actions.js";
import { isOpen } from "./connection.js";
import { byId, h, reconcile } from "./dom.js";
import { levelOf, plural, shortTime } from "./format.js";
import { showError } from "./notices.js";
import { countChangedSince, countMark, setCount, unresolvedCount } from "./overview.js";
import { viewHash } from "./routing.js";
import { schedule } from "./schedule.js";
import { DEFAULT_QUERY, compareIssues, isRegressed, isUnresolvedOnly, membership, sortOf } from "./search.js";

/** @typedef {import("./api.js").Issue} Issue */
/** @typedef {import("./search.js").Sort} Sort */
/**
 * A row's parts, updated in place; `key` names its set of buttons.
 * @typedef {{ li: HTMLLIElement, level: HTMLSpanElement, title: HTMLAnchorElement,
 *   culprit: HTMLParagraphElement, status: HTMLSpanElement, count: HTMLSpanElement,
 *   seen: HTMLTimeElement, regressed: HTMLSpanElement, actions: HTMLDivElement, key: string,
 *   select: HTMLInputElement }} Row
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
/** Issues that left the list (id → when, `performance.now()`): a read begun before must not bring them back. */
const departed = new Map();
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
/** How many issues the search finds in all: the server's `total`, kept by the stream (null: not known). */
let total = /** @type {number | null} */ (null);
/** Timer: the total is read again when the stream's news cannot settle it here. */
let totalReload = 0;
/** The "Load more" button under the list (made by `initList`). */
let moreButton = /** @type {HTMLButtonElement | null} */ (null);
/** Above the list: what this page's last click took out of it, with the button to undo it. */
let undoBox = /** @type {HTMLParagraphElement | null} */ (null);
/** The issues whose checkbox is ticked, in the order they were ticked. */
const selected = new Set();
/** Above the list while issues are selected: how many, the merge's target, its button. */
const mergeBar = {
  box: /** @type {HTMLDivElement | null} */ (null),
  note: /** @type {HTMLSpanElement | null} */ (null),
  into: /** @type {HTMLSelectElement | null} */ (null),
  button: /** @type {HTMLButtonElement | null} */ (null),
  done: /** @type {HTMLParagraphElement | null} */ (null),
};

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
  undoBox = h("p", { class: "notice-inline list-undo", "data-testid": "list-undo", role: "status", hidden: true });
  ui.issues.before(undoBox);
  initMergeBar();
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
  hideUndo();
  total = null;
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
  hideUndo();
  pages = 1;
  total = null;
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
 * Merges what is known of an issue (a stream message, a click's answer, a fetch): it stays,
 * joins or leaves the list as the search now judges it, and the total follows.
 * @param {Issue} issue
 * @param {boolean} [touched]
 */
export function upsertIssue(issue, touched = true) {
  const known = issues.get(issue.id);
  let left = false;
  const merged = { ...(known?.issue ?? {}), ...issue };
  const belongs = membership(query)(merged);
  const now = performance.now();
  // With every page loaded, an issue not in the list was not in the search either.
  const allLoaded = nextPage === null && total !== null;
  if (known && belongs === false) {
    issues.delete(issue.id);
    departed.set(issue.id, now);
    left = true;
    if (total !== null) total = Math.max(0, total - 1);
  } else if (known) {
    // Still in (or only the server can tell, and it was in): updated in place.
    issues.set(issue.id, { issue: merged, touched: touched ? now : known.touched });
  } else if (belongs === true) {
    departed.delete(issue.id);
    issues.set(issue.id, { issue: merged, touched: touched ? now : 0 });
    if (allLoaded && total !== null) total += 1;
    else reloadTotalSoon();
  } else if (belongs === null) {
    reloadListSoon();
  } else if (!allLoaded) {
    reloadTotalSoon(); // it may have been on a page not loaded
  }
  if (undoBox && !undoBox.hidden && undoBox.dataset.issueId === String(issue.id) && issues.has(issue.id)) {
    // Undone (or back by anyone's hand): the keyboard goes from the notice to the row.
    const hadFocus = undoBox.contains(document.activeElement);
    hideUndo();
    if (hadFocus) {
      renderIssues();
      focusRow(issue.id);
    }
  }
  onUpsert(issue);
  schedule(renderIssues);
  return left;
}

/**
 * After a click on a status button: the issue as the server now has it, or null when the
 * change failed. An issue the search no longer finds leaves the list like any other; the
 * list then says so above it, with the button that undoes it (which takes the keyboard
 * when the click was in the list).
 * @param {Issue | null} issue
 */
export function actedOn(issue) {
  if (issue) {
    const inList = ui.issues.contains(document.activeElement);
    if (upsertIssue(issue)) showUndo(issue, inList);
  }
  schedule(renderIssues);
}

/**
 * "Resolved “title”. [Unresolve]": the issue this page's click took out of the list.
 * @param {Issue} issue
 * @param {boolean} focus
 */
function showUndo(issue, focus) {
  if (!undoBox) return;
  const made = actionButtons(issue, () => knownIssue(issue.id) ?? issue, { changed: actedOn });
  const status = issue.status ?? "changed";
  undoBox.dataset.issueId = String(issue.id);
  undoBox.replaceChildren(
    h("span", {}, `${status[0].toUpperCase()}${status.slice(1)}: “${issue.title || `issue ${issue.id}`}”. `),
    ...made.buttons,
  );
  undoBox.hidden = false;
  if (focus) made.buttons[0]?.focus({ preventScroll: true });
}

function hideUndo() {
  if (!undoBox) return;
  undoBox.hidden = true;
  undoBox.replaceChildren();
  delete undoBox.dataset.issueId;
}

/** The unresolved count shown above changed: the note follows it. */
export function countChanged() {
  schedule(showNote);
}

/**
 * The `issue` message of a new or regressed issue counted its triggering event, which
 * comes right after: it is not counted again.
 * @param {number} id
 */
export function expectTriggerOf(id) {
  expectTrigger.add(id);
}

/**
 * The search's size cannot be settled from here (an issue joined or left with pages not
 * loaded): read it again, one row's worth, at most every second. For `is:unresolved` the
 * unresolved count is the size, and is kept by the stream.
 */
function reloadTotalSoon() {
  if (totalReload || isUnresolvedOnly(query)) return;
  totalReload = setTimeout(async () => {
    totalReload = 0;
    const gen = currentGeneration();
    const asked = query;
    try {
      const body = await api(issuesPath(null, 1));
      if (gen === currentGeneration() && asked === query && typeof body?.total === "number") {
        total = body.total;
        showNote();
      }
    } catch {
      // The next read of the list brings it.
    }
  }, 1_000);
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
 * @param {number} [limit]
 */
function issuesPath(cursor = null, limit = ISSUE_LIMIT) {
  const params = new URLSearchParams({ limit: String(limit), sort });
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

/**
 * How many issues the search finds: for `is:unresolved` the unresolved count shown above
 * (the same number, always), else the server's total as the stream kept it.
 */
function searchSize() {
  if (isUnresolvedOnly(query)) return unresolvedCount() ?? total;
  return total;
}

/** The note beside the heading: how many issues the search finds, and how many are shown. */
function showNote() {
  const size = searchSize();
  const shown = issues.size;
  ui.issuesNote.dataset.total = size === null ? "" : String(size);
  ui.issuesNote.dataset.shown = String(shown);
  if (size === null) ui.issuesNote.textContent = shown ? `${shown} shown` : "";
  else if (nextPage && shown < size) ui.issuesNote.textContent = `${plural(size, "issue", "issues")} · ${shown} shown`;
  else ui.issuesNote.textContent = plural(size, "issue", "issues");
}

/**
 * Reads the search's pages (as many as were shown), all or nothing; `total` is the first
 * page's (null from a server without it).
 * @returns {Promise<{ found: Issue[], next: string | null, total: number | null }>}
 */
async function readPages() {
  /** @type {Issue[]} */
  const found = [];
  /** @type {string | null} */
  let next = null;
  /** @type {number | null} */
  let total = null;
  for (let page = 0; page < pages && (page === 0 || next); page++) {
    const answer = await apiPage(issuesPath(next));
    if (!Array.isArray(answer.body?.issues)) break;
    if (page === 0 && typeof answer.body.total === "number") total = answer.body.total;
    found.push(...answer.body.issues);
    next = answer.next;
  }
  return { found, next, total };
}

/** Loads the issues the search finds (the snapshot replaces the counts kept so far). */
export async function loadIssues() {
  const gen = currentGeneration();
  const asked = { query, sort };
  const stale = () => gen !== currentGeneration() || asked.query !== query || asked.sort !== sort;
  const started = performance.now();
  const mark = countMark();
  /** @type {{ found: Issue[], next: string | null, total: number | null }} */
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
  for (const issue of found) {
    // An issue that left the list while this was read stays out; one the stream changed
    // meanwhile is kept as the stream has it.
    if ((departed.get(issue.id) ?? -1) > started) continue;
    const known = issues.get(issue.id);
    fresh.set(issue.id, known && known.touched > started ? known : { issue, touched: started });
  }
  for (const [id, known] of issues) {
    // Keep what joined while the list was loading.
    if (!fresh.has(id) && known.touched > started) fresh.set(id, known);
  }
  for (const [id, when] of departed) if (when <= started) departed.delete(id);
  issues = fresh;
  expectTrigger.clear();
  total = read.total ?? (next === null ? found.length : null);
  // The server counted the unresolved issues as it read the list: newer than the count
  // shown, unless the stream sent one meanwhile.
  if (isUnresolvedOnly(asked.query) && total !== null && !countChangedSince(mark)) setCount(total);
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
  for (const issue of found) {
    if (!issues.has(issue.id) && (departed.get(issue.id) ?? -1) <= started) {
      issues.set(issue.id, { issue, touched: started });
    }
  }
  if (typeof answer.body?.total === "number") total = answer.body.total;
  pages += 1;
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
  const regressed = h(
    "span",
    { class: "mark-regressed", "data-testid": "regressed-mark", title: "A new event reopened this resolved issue" },
    "regressed",
  );
  const actions = h("div", { class: "issue-actions" });
  const select = h("input", { type: "checkbox", class: "issue-select", "data-testid": "issue-select" });
  select.addEventListener("change", () => {
    if (select.checked) selected.add(issue.id);
    else selected.delete(issue.id);
    showMergeBar();
  });
  li.append(
    select,
    h(
      "div",
      { class: "issue-main" },
      h("div", { class: "issue-line" }, level, regressed, title),
      culprit,
      h("p", { class: "issue-meta" }, count, seen, status),
    ),
    actions,
  );
  return { li, level, title, culprit, status, count, seen, regressed, actions, key: "", select };
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
  p.select.checked = selected.has(issue.id);
  p.select.setAttribute("aria-label", `Select for merging: ${issue.title || `issue ${issue.id}`}`);
  p.culprit.textContent = issue.culprit || "";
  p.culprit.hidden = !issue.culprit;
  p.count.textContent = plural(issue.event_count ?? 0, "event", "events");
  p.count.dataset.count = String(issue.event_count ?? 0);
  p.seen.textContent = `last seen ${shortTime(issue.last_seen)}`;
  p.seen.dateTime = issue.last_seen ?? "";
  p.status.textContent = status;
  p.status.className = `status state-${status}`;
  p.status.dataset.testid = "issue-status";
  const regressed = isRegressed(issue, Date.now());
  p.regressed.hidden = !regressed;
  p.li.dataset.regressed = String(regressed);
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
  // The row holding the keyboard, by place: if it leaves, the keyboard goes to the next.
  const focusedAt = [...ui.issues.children].findIndex((li) => li.contains(focused));
  reconcile(ui.issues, rows, sorted, {
    key: (issue) => issue.id,
    make: issueRow,
    element: (row) => row.li,
    update: updateIssueRow,
  });
  // Moving a row moves its focused button out of the document for a moment.
  if (focused instanceof HTMLElement && focused.isConnected && document.activeElement !== focused) {
    focused.focus({ preventScroll: true });
  } else if (focusedAt >= 0 && focused instanceof HTMLElement && !focused.isConnected && sorted.length > 0) {
    focusRow(sorted[Math.min(focusedAt, sorted.length - 1)].id);
  }
  showNote();
  // A selected issue that left the list leaves the selection.
  if ([...selected].some((id) => !issues.has(id))) showMergeBar();
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
  total = null;
  departed.clear();
  hideUndo();
  selected.clear();
  showMergeBar();
  showMore(null);
  ui.issuesNote.textContent = "";
  schedule(renderIssues);
}

/** The merge bar above the list (hidden until two issues are selected). */
function initMergeBar() {
  mergeBar.note = h("span", { class: "merge-note", "data-testid": "merge-note" });
  mergeBar.into = h("select", { class: "merge-into", "data-testid": "merge-into", id: "merge-into" });
  mergeBar.button = h("button", { type: "button", class: "merge-button", "data-testid": "merge-button" });
  mergeBar.button.addEventListener("click", mergeSelected);
  const clear = h("button", { type: "button", class: "merge-clear", "data-testid": "merge-clear" }, "Clear selection");
  clear.addEventListener("click", () => {
    selected.clear();
    showMergeBar();
    schedule(renderIssues);
  });
  mergeBar.box = h(
    "div",
    { class: "merge-bar", "data-testid": "merge-bar", role: "group", "aria-label": "Merge selected issues", hidden: true },
    mergeBar.note,
    h("label", { for: "merge-into" }, "into"),
    mergeBar.into,
    mergeBar.button,
    clear,
  );
  mergeBar.done = h("p", { class: "notice-inline merge-done", "data-testid": "merge-done", role: "status", hidden: true });
  ui.issues.before(mergeBar.box, mergeBar.done);
}

/** The merge bar as the selection is: shown from one selected issue, its button from two. */
function showMergeBar() {
  const { box, note, into, button } = mergeBar;
  if (!box || !note || !into || !button) return;
  for (const id of selected) if (!issues.has(id)) selected.delete(id);
  box.hidden = selected.size === 0;
  if (mergeBar.done && selected.size > 0) mergeBar.done.hidden = true;
  note.textContent = `${selected.size} selected`;
  const chosen = Number(into.value);
  into.replaceChildren(
    ...[...selected].map((id) => {
      const title = issues.get(id)?.issue.title || `issue ${id}`;
      return h("option", { value: String(id) }, `#${id} ${title.length > 60 ? `${title.slice(0, 59)}…` : title}`);
    }),
  );
  if (selected.has(chosen)) into.value = String(chosen);
  button.textContent = `Merge ${plural(selected.size, "issue", "issues")}`;
  if (selected.size < 2) button.setAttribute("aria-disabled", "true");
  else button.removeAttribute("aria-disabled");
}

/** "Merge N issues": the selected issues folded into the chosen one (the first selected). */
async function mergeSelected() {
  const { into, button } = mergeBar;
  if (!into || !button || button.getAttribute("aria-disabled") === "true" || selected.size < 2) return;
  const target = Number(into.value) || [...selected][0];
  const folded = [...selected].filter((id) => id !== target);
  button.setAttribute("aria-disabled", "true");
  const done = await mergeIssues(target, folded);
  if (!done) {
    showMergeBar();
    return;
  }
  selected.clear();
  mergedInto(done.issue, done.merged);
  if (mergeBar.done) {
    mergeBar.done.textContent = `Merged ${plural(done.merged.length + 1, "issue", "issues")} into “${done.issue.title || `issue ${done.issue.id}`}”.`;
    mergeBar.done.hidden = false;
  }
  renderIssues();
  focusRow(done.issue.id);
}

/**
 * Issues were merged (by this page or announced by the stream): the folded ones leave the
 * list, the merged one takes their counts.
 * @param {Issue} issue
 * @param {number[]} folded
 */
export function mergedInto(issue, folded) {
  const now = performance.now();
  for (const id of folded) {
    selected.delete(id);
    expectTrigger.delete(id);
    if (issues.delete(id) && total !== null) total = Math.max(0, total - 1);
    departed.set(id, now);
  }
  upsertIssue(issue);
  showMergeBar();
}
