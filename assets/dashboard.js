// Mesher's live dashboard (SPEC §6): plain ES module, no dependencies, no build step.
//
// One WebSocket per view on /stream/projects/<id> (docs/PROTOCOL.md): events go to the
// feed and the chart, `issue` and `issue_count` messages keep the issue list and the
// unresolved count current. After a drop the view reconnects with `?since=<last seq>`, so
// the server replays what it missed; rows are keyed by seq, so nothing shows twice.
// The token goes as the socket's first message (`{"type":"auth"}`), never in its URL.
// Everything the server sends is put into the page as text, never as HTML.
//
// The address fragment holds the view (never the token, once connected):
// `#project=<id>[&query=…][&sort=…][&issue=<id>[&event=<event id>]]`, so a view can be
// linked to and the back button returns from an issue to the list.

import { h, renderEvent } from "./event.js";

const LEVELS = ["debug", "info", "warning", "error", "fatal"];
const SEVERITY = new Map(LEVELS.map((level, i) => [level, i]));
const FEED_CAP = 200;
const ISSUE_LIMIT = 100;
const CHART_MINUTES = 30;
const MINUTE = 60_000;
const REFRESH_MS = 60_000;
// How often the server's counts (unresolved issues, events per minute) are read again.
const STATS_MS = 10_000;
const STORAGE = { project: "mesher.project", token: "mesher.token" };
const DEFAULT_QUERY = "is:unresolved";
const SORTS = new Set(["last_seen", "first_seen", "event_count"]);
const STATUSES = new Set(["unresolved", "resolved", "archived", "discarded"]);

const $ = (id) => document.getElementById(id);
const ui = {
  form: $("connect-form"),
  project: $("project-input"),
  token: $("token-input"),
  connect: $("connect-button"),
  disconnect: $("disconnect-button"),
  connectError: $("connect-error"),
  projectLabel: $("project-label"),
  status: $("connection-status"),
  statusDetail: $("connection-detail"),
  lagged: $("lagged-notice"),
  laggedText: $("lagged-text"),
  laggedDismiss: $("lagged-dismiss"),
  error: $("error-notice"),
  errorText: $("error-text"),
  errorDismiss: $("error-dismiss"),
  count: $("issue-count"),
  chart: $("chart"),
  chartPeak: $("chart-peak"),
  issues: $("issue-list"),
  issuesEmpty: $("issues-empty"),
  issuesNote: $("issues-note"),
  filterForm: $("filter-form"),
  level: $("level-filter"),
  env: $("env-filter"),
  filterStatus: $("filter-status"),
  feed: $("feed"),
  feedEmpty: $("feed-empty"),
  listView: $("list-view"),
  searchForm: $("search-form"),
  search: $("search-input"),
  sort: $("sort-select"),
  searchError: $("search-error"),
  issueView: $("issue-view"),
  back: $("back-link"),
  issueLevel: $("issue-level"),
  issueStatus: $("issue-status"),
  issueTitle: $("issue-title"),
  issueCulprit: $("issue-culprit"),
  issueCount: $("issue-event-count"),
  issueFirst: $("issue-first-seen"),
  issueLast: $("issue-last-seen"),
  issueActions: $("issue-actions"),
  issueChart: $("issue-chart"),
  issueChartPeak: $("issue-chart-peak"),
  older: $("older-button"),
  newer: $("newer-button"),
  newest: $("newest-button"),
  newEvents: $("new-events"),
  eventError: $("event-error"),
  eventContent: $("event-content"),
  tags: $("tag-breakdown"),
  tagsEmpty: $("tags-empty"),
};

// ---------------------------------------------------------------------------------------
// State

const state = {
  project: null,
  token: null,
  ws: null,
  gen: 0, // bumped for every socket; callbacks of older sockets are ignored
  live: false,
  connId: null,
  retries: 0,
  retryTimer: null,
  refreshTimer: null,
  statsTimer: null,
  lastSeq: null, // highest seq this view has accounted for; null before the first subscribe
  replayTarget: -1, // the `seq` of the latest `subscribed`: events up to it are already counted in the issue list
  applied: {}, // filters the server confirmed
  pendingFilters: false,
  feed: [], // {seq, issueId, event}, newest (highest seq) first
  feedRows: new Map(), // seq → <li>
  seen: new Set(), // seqs shown or counted (bounded)
  issues: new Map(), // id → {issue, touched}
  issueRows: new Map(), // id → <li>
  expectTrigger: new Set(), // issues whose triggering event is still to come (already counted)
  fetchingIssues: new Set(),
  acted: new Set(), // issues this session changed: kept in the list so they can be undone
  unresolved: null,
  countStamp: 0, // bumped on every issue_count message
  minutes: new Map(), // minute number → {level: count}
  laggedTotal: 0,
  query: DEFAULT_QUERY, // the issue list's search (SPEC §3.1 syntax)
  sort: "last_seen",
  listReload: 0, // timer: the list is read again when the search cannot be judged here
  // The open issue (null on the list): its id, the event shown, and what arrived since.
  view: null,
  dirty: { feed: false, issues: false, chart: false },
  frame: 0,
};

// ---------------------------------------------------------------------------------------
// Small helpers

function svg(tag, attrs = {}) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

function load(key) {
  try {
    return localStorage.getItem(key) ?? "";
  } catch {
    return "";
  }
}

function save(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    // Storage may be disabled; the dashboard works without it.
  }
}

function pad(n) {
  return String(n).padStart(2, "0");
}

/// Local clock time of an ISO timestamp, with the date when it is not today.
function shortTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso ?? "");
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const today = new Date();
  if (d.toDateString() === today.toDateString()) return time;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

function levelOf(level) {
  return SEVERITY.has(level) ? level : "error";
}

function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${state.token}`, ...(options.headers ?? {}) };
  const response = await fetch(path, { ...options, headers, cache: "no-store" });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const reason = body && typeof body.error === "string" ? body.error : response.statusText;
    const err = new Error(`${response.status}: ${reason}`);
    err.status = response.status;
    throw err;
  }
  return body;
}

function showError(message) {
  ui.errorText.textContent = message;
  ui.error.hidden = false;
}

// ---------------------------------------------------------------------------------------
// Connection status

function setStatus(kind, detail = "") {
  const text = {
    idle: "not connected",
    connecting: "connecting",
    live: "live",
    reconnecting: "reconnecting",
    error: "not connected",
  }[kind];
  ui.status.dataset.state = kind;
  ui.status.textContent = text;
  ui.statusDetail.textContent = detail;
  document.body.dataset.connection = kind;
}

// ---------------------------------------------------------------------------------------
// Filters

/// The filters the controls ask for, as a `subscribe` message's `filters`.
function wantedFilters() {
  const filters = {};
  const level = ui.level.value;
  if (level.startsWith("min:")) filters.min_level = level.slice(4);
  else if (level) filters.level = level;
  const env = ui.env.value.trim();
  if (env) filters.environment = env;
  return filters;
}

/// Server filters (every value a list) in the controls' terms.
function describe(filters) {
  const one = (v) => (Array.isArray(v) ? v.join(",") : (v ?? ""));
  const level = filters.min_level ? `min:${one(filters.min_level)}` : one(filters.level);
  return { level, environment: one(filters.environment) };
}

function sameFilters(a, b) {
  const x = describe(a);
  const y = describe(b);
  return x.level === y.level && x.environment === y.environment;
}

function matches(event, filters) {
  const list = (v) => (v === undefined || v === null ? null : Array.isArray(v) ? v : [v]);
  const level = list(filters.level);
  if (level && level.length && !level.includes(event.level)) return false;
  const min = list(filters.min_level);
  if (min && min.length) {
    const floor = Math.min(...min.map((l) => SEVERITY.get(l) ?? 0));
    if ((SEVERITY.get(event.level) ?? 0) < floor) return false;
  }
  const env = list(filters.environment);
  if (env && env.length && !env.includes(event.environment)) return false;
  return true;
}

function renderFilterStatus() {
  const d = describe(state.applied);
  const el = ui.filterStatus;
  el.dataset.level = d.level;
  el.dataset.environment = d.environment;
  el.dataset.state = state.pendingFilters ? "pending" : "applied";
  if (state.pendingFilters) {
    el.textContent = "applying filters…";
    return;
  }
  const parts = [];
  if (d.level.startsWith("min:")) parts.push(`${d.level.slice(4)} or worse`);
  else if (d.level) parts.push(`level ${d.level}`);
  if (d.environment) parts.push(`env ${d.environment}`);
  el.textContent = parts.length ? `filtered: ${parts.join(" · ")}` : "all events";
}

/// Sends the controls' filters when they differ from what the server applies.
function syncFilters() {
  const ws = state.ws;
  if (!state.live || !ws || ws.readyState !== WebSocket.OPEN || state.pendingFilters) return;
  const wanted = wantedFilters();
  if (sameFilters(wanted, state.applied)) return;
  state.pendingFilters = true;
  ws.send(JSON.stringify({ type: "subscribe", filters: wanted }));
  renderFilterStatus();
}

function onFiltersConfirmed(filters) {
  state.pendingFilters = false;
  state.applied = filters ?? {};
  // The feed shows what the current filters let through.
  const kept = state.feed.filter((row) => matches(row.event, state.applied));
  if (kept.length !== state.feed.length) {
    state.feed = kept;
    state.dirty.feed = true;
    schedule();
  }
  renderFilterStatus();
  syncFilters(); // the controls may have moved on meanwhile
}

let envTimer = 0;
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

// ---------------------------------------------------------------------------------------
// Events: feed and chart

function remember(seq) {
  state.seen.add(seq);
  if (state.seen.size > 20_000) {
    // Sets iterate in insertion order: forget the oldest.
    let drop = state.seen.size - 10_000;
    for (const s of state.seen) {
      if (drop-- <= 0) break;
      state.seen.delete(s);
    }
  }
}

/// The minute a live event counts in: when it arrived (the server counts by receipt).
function chartMinute() {
  return Math.floor(Date.now() / MINUTE);
}

/// One event from the stream (`live`) or from the events API (backfill).
function addEvent(seq, issueId, event, { live }) {
  if (typeof seq !== "number" || state.seen.has(seq)) return;
  remember(seq);
  if (state.lastSeq === null || seq > state.lastSeq) {
    // Replayed events move the mark as they come; the `pong` after a replay settles it.
    state.lastSeq = Math.max(state.lastSeq ?? 0, seq);
  }
  // Chart: per minute of receipt and level. The server's counts (`loadStats`) replace these
  // every few seconds; live events fill the gap meanwhile, stored ones are in the counts.
  const minute = chartMinute();
  if (live && minute > Math.floor(Date.now() / MINUTE) - CHART_MINUTES) {
    const bucket = state.minutes.get(minute) ?? {};
    const level = levelOf(event.level);
    bucket[level] = (bucket[level] ?? 0) + 1;
    state.minutes.set(minute, bucket);
    state.dirty.chart = true;
  }
  // Feed, newest first, capped.
  if (matches(event, state.applied)) {
    const row = { seq, issueId, event };
    const at = state.feed.findIndex((r) => r.seq < seq);
    if (at === -1) state.feed.push(row);
    else state.feed.splice(at, 0, row);
    if (state.feed.length > FEED_CAP) state.feed.length = FEED_CAP;
    state.dirty.feed = true;
  }
  // Issue counts: only for events newer than the issue list's snapshot.
  if (live && seq > state.replayTarget) {
    countEvent(issueId, event);
    viewEvent(issueId, event);
  }
  schedule();
}

function feedRow(row) {
  const e = row.event;
  const level = levelOf(e.level);
  const meta = h(
    "p",
    { class: "feed-meta" },
    h("span", { class: "env", title: "environment", text: e.environment || "production" }),
  );
  if (e.release) meta.append(h("span", { class: "release", title: "release", text: e.release }));
  meta.append(
    h("time", { datetime: e.timestamp, title: e.timestamp, text: shortTime(e.timestamp) }),
  );
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
    h(
      "div",
      { class: "feed-body" },
      h("p", { class: "feed-title", title: e.title || e.message, text: e.title || e.message || "(no title)" }),
      meta,
    ),
  );
}

function renderFeed() {
  const wanted = new Set(state.feed.map((r) => r.seq));
  for (const [seq, li] of state.feedRows) {
    if (!wanted.has(seq)) {
      li.remove();
      state.feedRows.delete(seq);
    }
  }
  let prev = null;
  for (const row of state.feed) {
    let li = state.feedRows.get(row.seq);
    if (!li) {
      li = feedRow(row);
      state.feedRows.set(row.seq, li);
    }
    const next = prev ? prev.nextSibling : ui.feed.firstChild;
    if (li !== next) ui.feed.insertBefore(li, next);
    prev = li;
  }
  ui.feedEmpty.hidden = state.feed.length > 0;
}

function renderChart() {
  drawChart(ui.chart, ui.chartPeak, state.minutes);
  if (state.view) drawChart(ui.issueChart, ui.issueChartPeak, state.view.minutes);
}

/// Events per minute and level over the last 30 minutes, as stacked bars.
function drawChart(el, peakEl, minutes) {
  const nowMinute = Math.floor(Date.now() / MINUTE);
  const first = nowMinute - CHART_MINUTES + 1;
  for (const m of minutes.keys()) if (m < first) minutes.delete(m);
  const columns = [];
  let peak = 0;
  let total = 0;
  for (let m = first; m <= nowMinute; m++) {
    const bucket = minutes.get(m) ?? {};
    const sum = LEVELS.reduce((s, l) => s + (bucket[l] ?? 0), 0);
    peak = Math.max(peak, sum);
    total += sum;
    columns.push({ minute: m, bucket, sum });
  }
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
  columns.forEach((col, i) => {
    // A faint track per minute shows the scale when most minutes are empty.
    root.append(svg("rect", { x: i * W + 1, y: 0, width: W - 2, height: H, class: "track" }));
    if (!col.sum) return;
    const g = svg("g", {});
    const title = svg("title", {});
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

// ---------------------------------------------------------------------------------------
// Issues

/// The search's terms as far as this page can judge them: `is:`, `level:` and words of
/// the title or culprit. `null` when some term asks about stored events (environment,
/// release, tags): only the server can answer those, so the list is read again instead.
function localTerms(query) {
  const terms = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (const m of query.matchAll(re)) {
    const word = m[1] !== undefined ? null : m[2];
    if (word === null) {
      terms.push({ kind: "text", value: m[1].replace(/\\"/g, '"').toLowerCase() });
      continue;
    }
    const at = word.indexOf(":");
    const key = at > 0 ? word.slice(0, at) : "";
    if (!key || !/^[A-Za-z0-9_.\-/]+$/.test(key)) {
      terms.push({ kind: "text", value: word.toLowerCase() });
    } else if (key === "is") {
      terms.push({ kind: "is", value: word.slice(at + 1) });
    } else if (key === "level") {
      terms.push({ kind: "level", value: word.slice(at + 1) });
    } else {
      return null;
    }
  }
  return terms;
}

function localMatch(issue, terms) {
  const hay = `${issue.title ?? ""}\n${issue.culprit ?? ""}`.toLowerCase();
  return terms.every((t) =>
    t.kind === "is" ? issue.status === t.value : t.kind === "level" ? issue.level === t.value : hay.includes(t.value),
  );
}

const SORT_KEYS = {
  last_seen: (a, b) => (b.last_seen ?? "").localeCompare(a.last_seen ?? ""),
  first_seen: (a, b) => (b.first_seen ?? "").localeCompare(a.first_seen ?? ""),
  event_count: (a, b) => (b.event_count ?? 0) - (a.event_count ?? 0),
};

function sortIssues() {
  const by = SORT_KEYS[state.sort] ?? SORT_KEYS.last_seen;
  return [...state.issues.values()].map((x) => x.issue).sort((a, b) => by(a, b) || b.id - a.id);
}

/// Merges what is known of an issue: into the list when it is there or belongs there, and
/// into the open issue view.
function upsertIssue(issue, touched = true) {
  const known = state.issues.get(issue.id);
  const merged = { ...(known?.issue ?? {}), ...issue };
  if (known) {
    state.issues.set(issue.id, { issue: merged, touched: touched ? performance.now() : known.touched });
  } else {
    const terms = localTerms(state.query);
    if (terms === null) reloadListSoon();
    else if (localMatch(merged, terms)) {
      state.issues.set(issue.id, { issue: merged, touched: touched ? performance.now() : 0 });
    }
  }
  if (state.view?.id === issue.id) {
    state.view.issue = { ...(state.view.issue ?? {}), ...issue };
    renderIssueHead();
  }
  state.dirty.issues = true;
  schedule();
}

/// The search depends on stored events: read the list again (at most every 2 s).
function reloadListSoon() {
  if (state.listReload) return;
  state.listReload = setTimeout(() => {
    state.listReload = 0;
    loadIssues();
  }, 2_000);
}

/// An event for `issueId` arrived live: one more event, seen now.
function countEvent(issueId, event) {
  if (state.expectTrigger.delete(issueId)) return; // the `issue` message counted it already
  const known = state.issues.get(issueId);
  if (!known) {
    fetchIssue(issueId);
    return;
  }
  const issue = known.issue;
  issue.event_count = (issue.event_count ?? 0) + 1;
  issue.level = event.level ?? issue.level;
  const now = new Date().toISOString();
  if (!issue.last_seen || now > issue.last_seen) issue.last_seen = now;
  state.dirty.issues = true;
}

async function fetchIssue(id) {
  if (state.fetchingIssues.has(id)) return;
  state.fetchingIssues.add(id);
  const gen = state.gen;
  try {
    const body = await api(`/api/v1/issues/${id}`);
    if (gen === state.gen && body?.issue && !state.issues.has(id)) upsertIssue(body.issue);
  } catch {
    // Shown on the next refresh of the list.
  } finally {
    state.fetchingIssues.delete(id);
  }
}

function onIssueMessage(action, issue) {
  if (!issue || typeof issue.id !== "number") return;
  upsertIssue(issue);
  if (action === "new" || action === "regressed") {
    // The message's count includes the event that caused it, which comes right after
    // (when it passes this view's level filter): do not count that one twice.
    if (matches({ level: issue.level, environment: undefined }, { level: state.applied.level, min_level: state.applied.min_level })) {
      state.expectTrigger.add(issue.id);
      if (state.view?.id === issue.id) state.view.expectTrigger = true;
    }
  }
}

function issuesPath() {
  const params = new URLSearchParams({ limit: String(ISSUE_LIMIT), sort: state.sort });
  if (state.query.trim()) params.set("query", state.query.trim());
  return `/api/v1/projects/${encodeURIComponent(state.project)}/issues?${params}`;
}

/// Loads the issues the search finds (the snapshot replaces the counts kept so far).
async function loadIssues() {
  const gen = state.gen;
  const query = state.query;
  const sort = state.sort;
  const started = performance.now();
  let body;
  try {
    body = await api(issuesPath());
  } catch (err) {
    if (gen !== state.gen || query !== state.query || sort !== state.sort) return;
    if (err.status === 400) {
      ui.searchError.textContent = `The search was not understood: ${err.message.replace(/^400: /, "")}`;
      ui.searchError.hidden = false;
    } else {
      showError(`Could not load the issues: ${err.message}`);
    }
    return;
  }
  if (gen !== state.gen || query !== state.query || sort !== state.sort || !Array.isArray(body?.issues)) return;
  ui.searchError.hidden = true;
  const fresh = new Map();
  for (const issue of body.issues) fresh.set(issue.id, { issue, touched: started });
  for (const [id, known] of state.issues) {
    // Keep what changed while the list was loading, and issues this session acted on
    // (so a resolved one can be reopened from its row).
    if (!fresh.has(id) && (known.touched > started || state.acted.has(id))) fresh.set(id, known);
  }
  state.issues = fresh;
  state.expectTrigger.clear();
  if (query.trim() === DEFAULT_QUERY && body.issues.length < ISSUE_LIMIT) setCount(body.issues.length);
  else if (query.trim() === DEFAULT_QUERY && state.unresolved === null) setCount(null, `${ISSUE_LIMIT}+`);
  ui.issuesNote.textContent =
    body.issues.length >= ISSUE_LIMIT ? `first ${ISSUE_LIMIT} shown` : plural(body.issues.length, "issue", "issues");
  state.dirty.issues = true;
  schedule();
}

/// A stats answer's minutes as `minute number → {level: count}`.
function minutesFrom(list) {
  const minutes = new Map();
  for (const m of list) {
    if (!m.total) continue;
    const bucket = {};
    for (const [level, n] of Object.entries(m.levels ?? {})) {
      const l = levelOf(level);
      bucket[l] = (bucket[l] ?? 0) + n;
    }
    minutes.set(Math.floor(m.start / MINUTE), bucket);
  }
  return minutes;
}

/// The unresolved count and the events per minute as the server counted them: what the
/// project got, not what this page received (which falls behind in a storm). The open
/// issue's are read with them.
async function loadStats() {
  const gen = state.gen;
  const stamp = state.countStamp;
  if (state.view) loadIssueStats(state.view);
  let body;
  try {
    body = await api(
      `/api/v1/projects/${encodeURIComponent(state.project)}/stats?minutes=${CHART_MINUTES}`,
    );
  } catch {
    return; // the stream's counts still arrive
  }
  if (gen !== state.gen || !Array.isArray(body?.minutes)) return;
  // A count the stream sent meanwhile is newer than this answer.
  if (state.countStamp === stamp && typeof body.unresolved === "number") setCount(body.unresolved);
  state.minutes = minutesFrom(body.minutes);
  state.dirty.chart = true;
  schedule();
}

function setCount(n, text = null) {
  state.unresolved = n;
  ui.count.textContent = text ?? (n === null ? "–" : String(n));
  ui.count.dataset.count = n === null ? "" : String(n);
}

/// Changes an issue's status (from its row or from the issue view).
async function act(issue, action, buttons) {
  const before = issue.status;
  const stamp = state.countStamp;
  if (buttons.some((b) => b.getAttribute("aria-disabled") === "true")) return; // already busy
  // Not `disabled`: that would take the keyboard focus away from the button.
  for (const b of buttons) b.setAttribute("aria-disabled", "true");
  const headers = {};
  if (state.connId) headers["X-Mesher-Origin"] = state.connId;
  try {
    const body = await api(`/api/v1/issues/${issue.id}/${action}`, { method: "POST", headers });
    if (!body?.issue) throw new Error("the answer has no issue");
    const known = state.issues.get(issue.id);
    state.acted.add(issue.id);
    upsertIssue(body.issue);
    const after = body.issue.status;
    // The server's next `issue_count` is the truth; until then adjust the shown number,
    // unless a count arrived meanwhile (it already includes this change).
    if (state.countStamp === stamp && state.unresolved !== null && before !== after) {
      if (before === "unresolved") setCount(Math.max(0, state.unresolved - 1));
      else if (after === "unresolved") setCount(state.unresolved + 1);
    }
  } catch (err) {
    showError(`Could not ${action} issue ${issue.id}: ${err.message}`);
  } finally {
    for (const b of buttons) b.removeAttribute("aria-disabled");
    state.dirty.issues = true;
    schedule();
  }
}

const ACTIONS = {
  unresolved: [
    ["resolve", "Resolve"],
    ["archive", "Archive"],
  ],
  other: [["unresolve", "Unresolve"]],
};

/// The action buttons for an issue's status; `current()` gives the issue when clicked.
/// The issue view (`withDiscard`) also offers Discard, which asks to be clicked twice: its
/// future events are dropped.
function actionButtons(issue, current, { withDiscard = false } = {}) {
  const kind = issue.status === "unresolved" ? "unresolved" : "other";
  const list = [...ACTIONS[kind]];
  if (withDiscard && issue.status !== "discarded") list.push(["discard", "Discard…"]);
  const buttons = list.map(([action, label]) =>
    h("button", {
      type: "button",
      class: `action action-${action}`,
      "data-testid": `${action}-button`,
      "data-action": action,
      "aria-label": `${label}: ${issue.title || `issue ${issue.id}`}`,
      text: label,
    }),
  );
  for (const b of buttons) {
    b.addEventListener("click", () => {
      if (b.dataset.action === "discard" && b.dataset.armed !== "true") {
        b.dataset.armed = "true";
        b.textContent = "Confirm discard";
        setTimeout(() => {
          b.dataset.armed = "false";
          b.textContent = "Discard…";
        }, 5_000);
        return;
      }
      act(current(), b.dataset.action, buttons);
    });
  }
  return { kind: withDiscard ? `${kind}:${issue.status}` : kind, buttons };
}

/// The fragment of a view of this project (`issue`, `event` optional).
function viewHash({ issue = null, event = null } = {}) {
  const params = new URLSearchParams({ project: state.project });
  if (state.query !== DEFAULT_QUERY) params.set("query", state.query);
  if (state.sort !== "last_seen") params.set("sort", state.sort);
  if (issue !== null) params.set("issue", String(issue));
  if (event) params.set("event", event);
  return `#${params}`;
}

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
    h("div", { class: "issue-main" }, h("div", { class: "issue-line" }, level, title), culprit,
      h("p", { class: "issue-meta" }, count, seen, status)),
    actions,
  );
  li._parts = { level, title, culprit, status, count, seen, actions, key: "" };
  return li;
}

function updateIssueRow(li, issue) {
  const p = li._parts;
  const lvl = levelOf(issue.level);
  li.dataset.status = issue.status;
  li.dataset.level = lvl;
  li.className = `issue-row level-${lvl} status-${issue.status}`;
  p.level.className = `badge badge-${lvl}`;
  p.level.textContent = lvl;
  p.title.textContent = issue.title || "(no title)";
  p.title.title = issue.title || "";
  p.title.href = viewHash({ issue: issue.id });
  p.culprit.textContent = issue.culprit || "";
  p.culprit.hidden = !issue.culprit;
  p.count.textContent = plural(issue.event_count ?? 0, "event", "events");
  p.count.dataset.count = String(issue.event_count ?? 0);
  p.seen.textContent = `last seen ${shortTime(issue.last_seen)}`;
  p.seen.dateTime = issue.last_seen ?? "";
  p.status.textContent = issue.status;
  p.status.className = `status state-${issue.status}`;
  p.status.dataset.testid = "issue-status";
  const kind = issue.status === "unresolved" ? "unresolved" : "other";
  if (p.key !== kind) {
    // Keep keyboard focus on the row when its buttons change.
    const hadFocus = p.actions.contains(document.activeElement);
    const made = actionButtons(issue, () => state.issues.get(issue.id)?.issue ?? issue);
    p.key = made.kind;
    p.actions.replaceChildren(...made.buttons);
    if (hadFocus) made.buttons[0].focus({ preventScroll: true });
  }
}

function renderIssues() {
  const sorted = sortIssues().slice(0, ISSUE_LIMIT + 50);
  const wanted = new Set(sorted.map((i) => i.id));
  const focused = document.activeElement;
  for (const [id, li] of state.issueRows) {
    if (!wanted.has(id)) {
      li.remove();
      state.issueRows.delete(id);
    }
  }
  let prev = null;
  for (const issue of sorted) {
    let li = state.issueRows.get(issue.id);
    if (!li) {
      li = issueRow(issue);
      state.issueRows.set(issue.id, li);
    }
    updateIssueRow(li, issue);
    const next = prev ? prev.nextSibling : ui.issues.firstChild;
    if (li !== next) ui.issues.insertBefore(li, next);
    prev = li;
  }
  // Moving a row moves its focused button out of the document for a moment.
  if (focused instanceof HTMLElement && focused.isConnected && document.activeElement !== focused) {
    focused.focus({ preventScroll: true });
  }
  ui.issuesEmpty.hidden = sorted.length > 0;
  ui.issuesEmpty.textContent = state.query.trim() === DEFAULT_QUERY ? "No unresolved issues." : "No issues match this search.";
}

/// The search box and the sort: the list follows them, and the address keeps them.
function applySearch() {
  const query = ui.search.value.trim();
  const sort = SORTS.has(ui.sort.value) ? ui.sort.value : "last_seen";
  if (query === state.query && sort === state.sort) return;
  state.query = query;
  state.sort = sort;
  history.replaceState(null, "", viewHash());
  state.issues.clear();
  state.dirty.issues = true;
  schedule();
  loadIssues();
}

ui.searchForm.addEventListener("submit", (e) => {
  e.preventDefault();
  applySearch();
});
ui.sort.addEventListener("change", applySearch);

// ---------------------------------------------------------------------------------------
// The issue view: one issue, its tag breakdown, and one event in full

function projectPath(rest) {
  return `/api/v1/projects/${encodeURIComponent(state.project)}${rest}`;
}

/// Opens issue `id` on event `eventId` (its newest when null).
function openIssue(id, eventId, { fromList = false } = {}) {
  const same = state.view?.id === id;
  if (same && state.view.eventId === eventId) return;
  if (!same) {
    state.view = {
      id,
      issue: state.issues.get(id)?.issue ?? null,
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
    state.dirty.chart = true;
    schedule();
    renderIssueHead();
    scrollTo(0, 0);
    ui.issueTitle.focus({ preventScroll: true });
    loadIssue(state.view);
    loadIssueStats(state.view);
    loadTags(state.view);
  }
  ui.back.href = viewHash();
  showEvent(state.view, eventId);
}

function closeIssue() {
  const view = state.view;
  if (!view) return;
  state.view = null;
  ui.issueView.hidden = true;
  ui.listView.hidden = false;
  document.title = "Mesher · live dashboard";
  // Back on the list, the keyboard is where it was: on the issue's link.
  const row = state.issueRows.get(view.id);
  if (row) row._parts.title.focus({ preventScroll: true });
  state.dirty = { feed: true, issues: true, chart: true };
  schedule();
}

async function loadIssue(view) {
  try {
    const body = await api(`/api/v1/issues/${view.id}`);
    if (state.view !== view || !body?.issue) return;
    view.issue = { ...(view.issue ?? {}), ...body.issue };
    renderIssueHead();
  } catch (err) {
    if (state.view !== view) return;
    ui.issueTitle.textContent = err.status === 404 ? `Issue ${view.id} does not exist` : `Issue ${view.id}`;
    showViewError(`Could not load issue ${view.id}: ${err.message}`);
  }
}

async function loadIssueStats(view) {
  try {
    const body = await api(`/api/v1/issues/${view.id}/stats?minutes=${CHART_MINUTES}`);
    if (state.view !== view || !Array.isArray(body?.minutes)) return;
    view.minutes = minutesFrom(body.minutes);
    if (view.issue && typeof body.event_count === "number") {
      view.issue.event_count = Math.max(view.issue.event_count ?? 0, body.event_count);
      renderIssueHead();
    }
    state.dirty.chart = true;
    schedule();
  } catch {
    // The chart waits for the next reading.
  }
}

async function loadTags(view) {
  let body;
  try {
    body = await api(`/api/v1/issues/${view.id}/tags`);
  } catch {
    return;
  }
  if (state.view !== view || !Array.isArray(body?.tags)) return;
  const items = body.tags.map((tag) => {
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
      h("p", { class: "tag-head" }, h("code", { text: tag.key }), h("span", { class: "muted", text: plural(tag.total, "event", "events") })),
      values,
    );
  });
  ui.tags.replaceChildren(...items);
  ui.tagsEmpty.hidden = items.length > 0;
}

function renderIssueHead() {
  const view = state.view;
  const issue = view?.issue;
  if (!issue) {
    // Nothing of another issue may stay on screen (its buttons would act on it).
    ui.issueTitle.textContent = view ? `Issue ${view.id}` : "";
    for (const el of [ui.issueLevel, ui.issueStatus, ui.issueCulprit, ui.issueFirst, ui.issueLast]) el.textContent = "";
    ui.issueLevel.className = "badge";
    ui.issueCount.textContent = "–";
    ui.issueCount.dataset.count = "";
    ui.issueActions.replaceChildren();
    ui.issueView.dataset.issueId = view ? String(view.id) : "";
    if (view) view.headKind = "";
    return;
  }
  const lvl = levelOf(issue.level);
  ui.issueLevel.className = `badge badge-${lvl}`;
  ui.issueLevel.textContent = lvl;
  ui.issueStatus.className = `status state-${issue.status}`;
  ui.issueStatus.textContent = issue.status;
  ui.issueView.dataset.status = issue.status;
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
  const kind = `${issue.status === "unresolved" ? "unresolved" : "other"}:${issue.status}`;
  if (view.headKind !== kind) {
    const hadFocus = ui.issueActions.contains(document.activeElement);
    const made = actionButtons(issue, () => (state.view?.id === issue.id ? state.view.issue : null) ?? issue, {
      withDiscard: true,
    });
    view.headKind = made.kind;
    ui.issueActions.replaceChildren(...made.buttons);
    if (hadFocus) made.buttons[0].focus({ preventScroll: true });
  }
}

function showViewError(message) {
  ui.eventError.textContent = message;
  ui.eventError.hidden = false;
}

/// Loads and draws one event of the open issue: `eventId`, or the newest when null.
async function showEvent(view, eventId) {
  const gen = ++view.gen;
  view.eventId = eventId;
  ui.eventError.hidden = true;
  ui.eventContent.setAttribute("aria-busy", "true");
  for (const b of [ui.older, ui.newer, ui.newest]) b.disabled = true;
  const current = () => state.view === view && view.gen === gen;
  try {
    let id = eventId;
    if (!id) {
      const list = await api(`/api/v1/issues/${view.id}/events?limit=1`);
      if (!current()) return;
      id = list?.events?.[0]?.id;
      if (!id) {
        ui.eventContent.replaceChildren(h("p", { class: "empty", text: "No stored events for this issue." }));
        return;
      }
    }
    const body = await api(projectPath(`/events/${encodeURIComponent(id)}`));
    if (!current()) return;
    const event = body?.event;
    if (!event) throw new Error("the answer has no event");
    if (event.issue_id !== view.id) {
      showViewError(`Event ${id} belongs to issue ${event.issue_id}, not to issue ${view.id}.`);
      ui.eventContent.replaceChildren();
      return;
    }
    view.event = event;
    view.arrived = 0;
    ui.newEvents.hidden = true;
    const [older, newer] = await Promise.all([
            // A failed lookup only leaves that button off; the event still shows.
      api(`/api/v1/issues/${view.id}/events?before=${event.seq}&limit=1`).catch(() => null),
      api(`/api/v1/issues/${view.id}/events?after=${event.seq}&limit=1`).catch(() => null),
    ]);
    if (!current()) return;
    view.older = older?.events?.[0] ?? null;
    view.newer = newer?.events?.[0] ?? null;
    ui.eventContent.dataset.eventId = event.id;
    ui.eventContent.dataset.seq = String(event.seq);
    ui.eventContent.replaceChildren(renderEvent(event.data, event));
    renderStepping();
    } catch (err) {
    if (!current()) return;
    ui.eventContent.replaceChildren();
    ui.older.disabled = !view.older;
    ui.newer.disabled = !view.newer;
    ui.newest.disabled = false;
    showViewError(
      err.status === 404 ? `Event ${eventId} was not found in this project.` : `Could not load the event: ${err.message}`,
    );
  } finally {
    if (current()) ui.eventContent.setAttribute("aria-busy", "false");
  }
}

function renderStepping() {
  const view = state.view;
  if (!view?.event) return;
  ui.older.disabled = !view.older;
  ui.newer.disabled = !view.newer && view.arrived === 0;
  ui.newest.disabled = !view.newer && view.arrived === 0;
  ui.newEvents.hidden = view.arrived === 0;
  ui.newEvents.textContent = `${plural(view.arrived, "newer event has", "newer events have")} arrived since this one was opened.`;
}

/// Steps to the older or newer neighbour, or to the newest event. The address follows
/// (replacing, so Back still returns to the list).
async function stepTo(which) {
  const view = state.view;
  if (!view?.event) return;
  let target = null;
  if (which === "older") target = view.older?.id;
  else if (which === "newer") {
    target = view.newer?.id;
    if (!target) {
      // It arrived live after the neighbours were read.
      const next = await api(`/api/v1/issues/${view.id}/events?after=${view.event.seq}&limit=1`).catch(() => null);
      if (state.view !== view) return;
      target = next?.events?.[0]?.id;
    }
  }
  if (which !== "newest" && !target) return;
  history.replaceState(null, "", viewHash({ issue: view.id, event: which === "newest" ? null : target }));
  showEvent(view, which === "newest" ? null : target);
}

ui.older.addEventListener("click", () => stepTo("older"));
ui.newer.addEventListener("click", () => stepTo("newer"));
ui.newest.addEventListener("click", () => stepTo("newest"));
ui.back.addEventListener("click", (e) => {
  // Opened from the list: going back is the browser's Back, so history does not grow.
  if (state.view?.fromList) {
    e.preventDefault();
    history.back();
  }
});
addEventListener("keydown", (e) => {
  if (!state.view || e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey) return;
  const t = e.target;
  if (t instanceof HTMLElement && (t.isContentEditable || /^(INPUT|SELECT|TEXTAREA)$/.test(t.tagName))) return;
  // j/k step like in Sentry and mail readers; Escape returns to the list.
  if (e.key === "j" && !ui.older.disabled) stepTo("older");
  else if (e.key === "k" && !ui.newer.disabled) stepTo("newer");
  else if (e.key === "Escape") ui.back.click();
});

/// A live event: if it belongs to the open issue, its count grows and a newer event can
/// be stepped to.
function viewEvent(issueId, event) {
  const view = state.view;
  if (!view || view.id !== issueId) return;
  const listed = state.issues.get(issueId)?.issue;
  if (view.issue) {
    if (listed) {
      view.issue.event_count = Math.max(view.issue.event_count ?? 0, listed.event_count ?? 0);
      view.expectTrigger = false;
    } else if (view.expectTrigger) view.expectTrigger = false;
    else view.issue.event_count = (view.issue.event_count ?? 0) + 1;
    view.issue.last_seen = new Date().toISOString();
    renderIssueHead();
  }
  const minute = chartMinute();
  const bucket = view.minutes.get(minute) ?? {};
  const level = levelOf(event.level);
  bucket[level] = (bucket[level] ?? 0) + 1;
  view.minutes.set(minute, bucket);
  view.arrived++;
  if (view.event) renderStepping();
  state.dirty.chart = true;
  schedule();
}

// ---------------------------------------------------------------------------------------
// Rendering: at most once per frame

function schedule() {
  if (state.frame) return;
  state.frame = requestAnimationFrame(() => {
    state.frame = 0;
    if (state.dirty.feed) renderFeed();
    if (state.dirty.issues) renderIssues();
    if (state.dirty.chart) renderChart();
    state.dirty = { feed: false, issues: false, chart: false };
  });
}

// The chart moves on with the clock.
setInterval(() => {
  state.dirty.chart = true;
  schedule();
}, 15_000);

// ---------------------------------------------------------------------------------------
// The stream

function streamUrl() {
  const url = new URL(`/stream/projects/${encodeURIComponent(state.project)}`, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.hash = "";
  url.search = "";
  // The token is the first message, never in the URL (which proxies log).
  const f = wantedFilters();
  if (f.level) url.searchParams.set("level", f.level);
  if (f.min_level) url.searchParams.set("min_level", f.min_level);
  if (f.environment) url.searchParams.set("environment", f.environment);
  if (state.lastSeq !== null) url.searchParams.set("since", String(state.lastSeq));
  return url.href;
}

function openStream() {
  clearTimeout(state.retryTimer);
  state.retryTimer = null;
  const gen = ++state.gen;
  const first = state.lastSeq === null && state.retries === 0;
  setStatus(first ? "connecting" : "reconnecting", state.retries ? `attempt ${state.retries + 1}` : "");
  let subscribed = false;
  let ws;
  try {
    ws = new WebSocket(streamUrl());
  } catch (err) {
    fail(`cannot open the stream: ${err.message}`);
    return;
  }
  state.ws = ws;
  const token = state.token;
  ws.addEventListener("open", () => {
    if (gen === state.gen) ws.send(JSON.stringify({ type: "auth", token }));
  });
  ws.addEventListener("message", (m) => {
    if (gen !== state.gen) return;
    let msg;
    try {
      msg = JSON.parse(m.data);
    } catch {
      return;
    }
    if (msg.type === "subscribed") subscribed = true;
    onMessage(msg);
  });
  ws.addEventListener("close", () => {
    if (gen !== state.gen) return;
    state.ws = null;
    state.live = false;
    state.connId = null;
    state.pendingFilters = false;
    renderFilterStatus();
    clearInterval(state.refreshTimer);
    clearInterval(state.statsTimer);
    if (subscribed) retry();
    else checkThenRetry();
  });
}

function onMessage(msg) {
  switch (msg.type) {
    case "subscribed": {
      const first = state.lastSeq === null;
      state.live = true;
      state.connId = msg.conn_id;
      state.retries = 0;
      state.replayTarget = typeof msg.seq === "number" ? msg.seq : 0;
      state.applied = msg.filters ?? {};
      state.pendingFilters = false;
      setStatus("live");
      renderFilterStatus();
      if (first) {
        state.lastSeq = state.replayTarget;
        backfill(state.replayTarget);
      } else {
        // Replayed events come first; the answer to this ping marks their end.
        state.ws.send(JSON.stringify({ type: "ping" }));
      }
      loadIssues();
      loadStats();
      clearInterval(state.refreshTimer);
      state.refreshTimer = setInterval(loadIssues, REFRESH_MS);
      clearInterval(state.statsTimer);
      state.statsTimer = setInterval(loadStats, STATS_MS);
      syncFilters();
      break;
    }
    case "event":
      addEvent(msg.seq, msg.issue_id, msg.event ?? {}, { live: true });
      break;
    case "issue":
      onIssueMessage(msg.action, msg.issue);
      break;
    case "issue_count":
      state.countStamp++;
      if (typeof msg.count === "number") setCount(msg.count);
      break;
    case "filters_updated":
      onFiltersConfirmed(msg.filters);
      break;
    case "lagged":
      onLagged(msg.dropped);
      break;
    case "pong":
      state.lastSeq = Math.max(state.lastSeq ?? 0, state.replayTarget);
      break;
    case "error":
      if (state.pendingFilters) {
        state.pendingFilters = false;
        renderFilterStatus();
      }
      showError(`The server said: ${msg.error}`);
      break;
    default:
      break;
  }
}

/// The most recent stored events, so the feed and chart do not start empty.
async function backfill(upto) {
  if (upto <= 0) return;
  const gen = state.gen;
  let body;
  try {
    body = await api(
      `/api/v1/projects/${encodeURIComponent(state.project)}/events?since=${Math.max(0, upto - FEED_CAP)}&limit=${FEED_CAP}`,
    );
  } catch {
    return; // live events still arrive
  }
  if (gen !== state.gen || !Array.isArray(body?.events)) return;
  for (const e of body.events) {
    if (e.seq <= upto) addEvent(e.seq, e.issue_id, e, { live: false });
  }
}

function onLagged(dropped) {
  state.laggedTotal += Number(dropped) || 0;
  ui.laggedText.textContent = `${plural(state.laggedTotal, "message was", "messages were")} dropped because this view fell behind. The issue list has been reloaded; the feed may miss some events.`;
  ui.lagged.hidden = false;
  loadIssues();
  loadStats();
}

function retry() {
  const delay = Math.min(15_000, 500 * 2 ** state.retries) * (0.75 + Math.random() * 0.5);
  state.retries++;
  setStatus("reconnecting", `retrying in ${Math.ceil(delay / 1000)} s`);
  clearTimeout(state.retryTimer);
  state.retryTimer = setTimeout(openStream, delay);
}

/// The stream closed before it said `subscribed`: find out whether retrying can help.
async function checkThenRetry() {
  const gen = state.gen;
  try {
    await api(`/api/v1/projects/${encodeURIComponent(state.project)}/issues?limit=1`);
  } catch (err) {
    if (gen !== state.gen) return;
    if (err.status >= 400 && err.status < 500 && err.status !== 408 && err.status !== 429) {
      fail(err.status === 401 || err.status === 403 ? `the token was refused (${err.message})` : err.message);
      return;
    }
  }
  if (gen === state.gen) retry();
}

function fail(message) {
  stop();
  setStatus("error", message);
  ui.connectError.textContent = `Cannot connect: ${message}`;
  ui.connectError.hidden = false;
}

function stop() {
  state.gen++;
  clearTimeout(state.retryTimer);
  clearInterval(state.refreshTimer);
  clearInterval(state.statsTimer);
  state.retryTimer = null;
  const ws = state.ws;
  if (ws && ws.readyState === WebSocket.CONNECTING) {
    // Closing a socket that is still connecting makes the browser log an error.
    ws.addEventListener("open", () => ws.close(1000, "closed by the user"));
  } else if (ws && ws.readyState === WebSocket.OPEN) {
    ws.close(1000, "closed by the user");
  }
  state.ws = null;
  state.live = false;
  state.connId = null;
  state.pendingFilters = false;
  ui.disconnect.disabled = true;
}

addEventListener("online", () => {
  if (state.retryTimer) openStream();
});

// ---------------------------------------------------------------------------------------
// Connecting

function reset() {
  state.lastSeq = null;
  state.replayTarget = -1;
  state.retries = 0;
  state.applied = {};
  state.feed = [];
  state.seen.clear();
  state.issues.clear();
  state.expectTrigger.clear();
  state.minutes.clear();
  state.laggedTotal = 0;
  state.countStamp = 0;
  for (const li of state.feedRows.values()) li.remove();
  for (const li of state.issueRows.values()) li.remove();
  state.feedRows.clear();
  state.issueRows.clear();
  setCount(null);
  ui.lagged.hidden = true;
  ui.error.hidden = true;
  ui.issuesNote.textContent = "";
  state.dirty = { feed: true, issues: true, chart: true };
  schedule();
}

function start(project, token) {
  stop();
  reset();
  closeIssue();
  state.project = project;
  state.token = token;
  save(STORAGE.project, project);
  save(STORAGE.token, token);
  ui.project.value = project;
  ui.token.value = token;
  ui.connectError.hidden = true;
  ui.projectLabel.textContent = `project ${project}`;
  ui.disconnect.disabled = false;
  renderFilterStatus();
  openStream();
}

function validProject(value) {
  return /^[1-9][0-9]{0,18}$/.test(value);
}

ui.form.addEventListener("submit", (e) => {
  e.preventDefault();
  const project = ui.project.value.trim();
  const token = ui.token.value.trim();
  let problem = "";
  if (!validProject(project)) problem = "the project id is a positive whole number";
  else if (!token) problem = "paste the project's token";
  if (problem) {
    ui.connectError.textContent = `Cannot connect: ${problem}.`;
    ui.connectError.hidden = false;
    (validProject(project) ? ui.token : ui.project).focus();
    return;
  }
  start(project, token);
  history.replaceState(null, "", viewHash());
});

ui.disconnect.addEventListener("click", () => {
  stop();
  closeIssue();
  setStatus("idle");
  ui.connect.focus();
});

ui.laggedDismiss.addEventListener("click", () => {
  ui.lagged.hidden = true;
  state.laggedTotal = 0;
});
ui.errorDismiss.addEventListener("click", () => {
  ui.error.hidden = true;
});

// ---------------------------------------------------------------------------------------
// The address fragment

function readFragment() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const get = (k) => (params.get(k) ?? "").trim();
  return {
    any: [...params.keys()].length > 0,
    project: get("project"),
    token: get("token"),
    query: params.has("query") ? get("query") : DEFAULT_QUERY,
    sort: SORTS.has(get("sort")) ? get("sort") : "last_seen",
    issue: get("issue"),
    event: get("event"),
  };
}

/// Makes the page show what the fragment says: connect (`project` and `token`; the token
/// is then dropped from the address bar), the list's search and sort, and the open issue
/// and event. Called on load, on `hashchange` and on Back/Forward.
function route() {
  const f = readFragment();
  if (!f.any) return false;
  if (f.token || f.project !== state.project) {
    let token = f.token;
    if (!token && validProject(f.project) && load(STORAGE.project) === f.project) token = load(STORAGE.token);
    if (!validProject(f.project) || !token) {
      history.replaceState(null, "", location.pathname + location.search);
      ui.project.value = f.project;
      ui.connectError.textContent = "Cannot connect: the link needs #project=<id>&token=<token>.";
      ui.connectError.hidden = false;
      return true;
    }
        const searchChanged = f.query !== state.query || f.sort !== state.sort;
    state.query = f.query;
    state.sort = f.sort;
    ui.search.value = f.query;
    ui.sort.value = f.sort;
    if (f.project !== state.project || token !== state.token || !state.ws) start(f.project, token);
    else if (searchChanged) {
      state.issues.clear();
      state.dirty.issues = true;
      schedule();
      if (state.live) loadIssues();
    }
  } else if (f.query !== state.query || f.sort !== state.sort) {
    state.query = f.query;
    state.sort = f.sort;
    ui.search.value = f.query;
    ui.sort.value = f.sort;
    state.issues.clear();
    state.dirty.issues = true;
    schedule();
    if (state.live) loadIssues();
  }
  const issue = /^[1-9][0-9]{0,18}$/.test(f.issue) ? Number(f.issue) : null;
  if (f.token) history.replaceState(null, "", viewHash({ issue, event: f.event || null }));
  if (issue !== null) openIssue(issue, f.event || null, { fromList: navigatedFromList });
  else closeIssue();
  navigatedFromList = false;
  return true;
}

// A row's link was followed: Back from that issue is the browser's Back.
let navigatedFromList = false;
ui.issues.addEventListener("click", (e) => {
  // A click that opens a new tab or window navigates nothing here.
  if (e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
  if (e.target instanceof Element && e.target.closest("a.issue-title")) navigatedFromList = true;
});

addEventListener("hashchange", route);

setStatus("idle");
renderFilterStatus();
state.dirty.chart = true;
schedule();
if (!route()) {
  const project = load(STORAGE.project);
  const token = load(STORAGE.token);
  ui.project.value = project;
  ui.token.value = token;
  if (validProject(project) && token) {
    start(project, token);
    history.replaceState(null, "", viewHash());
  }
}
