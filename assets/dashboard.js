// Mesher's live dashboard (SPEC §6): plain ES module, no dependencies, no build step.
//
// One WebSocket per view on /stream/projects/<id> (docs/PROTOCOL.md): events go to the
// feed and the chart, `issue` and `issue_count` messages keep the issue list and the
// unresolved count current. After a drop the view reconnects with `?since=<last seq>`, so
// the server replays what it missed; rows are keyed by seq, so nothing shows twice.
// Everything the server sends is put into the page as text, never as HTML.

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
  unresolved: null,
  countStamp: 0, // bumped on every issue_count message
  minutes: new Map(), // minute number → {level: count}
  laggedTotal: 0,
  dirty: { feed: false, issues: false, chart: false },
  frame: 0,
};

// ---------------------------------------------------------------------------------------
// Small helpers

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

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
  if (live && seq > state.replayTarget) countEvent(issueId, event);
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
  const nowMinute = Math.floor(Date.now() / MINUTE);
  const first = nowMinute - CHART_MINUTES + 1;
  for (const m of state.minutes.keys()) if (m < first) state.minutes.delete(m);
  const columns = [];
  let peak = 0;
  let total = 0;
  for (let m = first; m <= nowMinute; m++) {
    const bucket = state.minutes.get(m) ?? {};
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
  ui.chart.replaceChildren(root);
  ui.chart.dataset.total = String(total);
  ui.chartPeak.textContent = peak ? `peak ${peak}/min` : "";
}

// ---------------------------------------------------------------------------------------
// Issues

function sortIssues() {
  return [...state.issues.values()]
    .map((x) => x.issue)
    .sort((a, b) => (b.last_seen ?? "").localeCompare(a.last_seen ?? "") || b.id - a.id);
}

function upsertIssue(issue, touched = true) {
  const known = state.issues.get(issue.id);
  state.issues.set(issue.id, {
    issue: { ...(known?.issue ?? {}), ...issue },
    touched: touched ? performance.now() : (known?.touched ?? 0),
  });
  state.dirty.issues = true;
  schedule();
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
    if (gen === state.gen && body?.issue && !state.issues.has(id) && body.issue.status === "unresolved") {
      upsertIssue(body.issue);
    }
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
    }
  }
}

/// Loads the unresolved issues (the list's snapshot replaces the counts kept so far).
async function loadIssues() {
  const gen = state.gen;
  const started = performance.now();
  let body;
  try {
    body = await api(
      `/api/v1/projects/${encodeURIComponent(state.project)}/issues?status=unresolved&limit=${ISSUE_LIMIT}`,
    );
  } catch (err) {
    if (gen === state.gen) showError(`Could not load the issues: ${err.message}`);
    return;
  }
  if (gen !== state.gen || !Array.isArray(body?.issues)) return;
  const fresh = new Map();
  for (const issue of body.issues) fresh.set(issue.id, { issue, touched: started });
  for (const [id, known] of state.issues) {
    // Keep what changed while the list was loading, and issues this session saw leave the
    // unresolved state (so they can be reopened).
    if (!fresh.has(id) && (known.touched > started || known.issue.status !== "unresolved")) {
      fresh.set(id, known);
    }
  }
  state.issues = fresh;
  state.expectTrigger.clear();
  if (body.issues.length < ISSUE_LIMIT) setCount(body.issues.length);
  else if (state.unresolved === null) setCount(null, `${ISSUE_LIMIT}+`);
  ui.issuesNote.textContent =
    body.issues.length >= ISSUE_LIMIT ? `${ISSUE_LIMIT} most recent shown` : "";
  state.dirty.issues = true;
  schedule();
}

/// The unresolved count and the events per minute as the server counted them: what the
/// project got, not what this page received (which falls behind in a storm).
async function loadStats() {
  const gen = state.gen;
  const stamp = state.countStamp;
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
  const minutes = new Map();
  for (const m of body.minutes) {
    if (!m.total) continue;
    const bucket = {};
    for (const [level, n] of Object.entries(m.levels ?? {})) {
      const l = levelOf(level);
      bucket[l] = (bucket[l] ?? 0) + n;
    }
    minutes.set(Math.floor(m.start / MINUTE), bucket);
  }
  state.minutes = minutes;
  state.dirty.chart = true;
  schedule();
}

function setCount(n, text = null) {
  state.unresolved = n;
  ui.count.textContent = text ?? (n === null ? "–" : String(n));
  ui.count.dataset.count = n === null ? "" : String(n);
}

async function act(issueId, action, buttons) {
  const known = state.issues.get(issueId);
  if (!known) return;
  const before = known.issue.status;
  const stamp = state.countStamp;
  if (buttons.some((b) => b.getAttribute("aria-disabled") === "true")) return; // already busy
  // Not `disabled`: that would take the keyboard focus away from the row.
  for (const b of buttons) b.setAttribute("aria-disabled", "true");
  const headers = {};
  if (state.connId) headers["X-Mesher-Origin"] = state.connId;
  try {
    const body = await api(`/api/v1/issues/${issueId}/${action}`, { method: "POST", headers });
    if (!body?.issue) throw new Error("the answer has no issue");
    upsertIssue(body.issue);
    const after = body.issue.status;
    // The server's next `issue_count` is the truth; until then adjust the shown number,
    // unless a count arrived meanwhile (it already includes this change).
    if (state.countStamp === stamp && state.unresolved !== null && before !== after) {
      if (before === "unresolved") setCount(Math.max(0, state.unresolved - 1));
      else if (after === "unresolved") setCount(state.unresolved + 1);
    }
  } catch (err) {
    showError(`Could not ${action} issue ${issueId}: ${err.message}`);
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

function issueRow(issue) {
  const li = h("li", { class: "issue-row", "data-testid": "issue-row", "data-issue-id": issue.id });
  const level = h("span", { class: "badge" });
  const title = h("p", { class: "issue-title" });
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
    const hadFocus = li.contains(document.activeElement);
    p.key = kind;
    const buttons = ACTIONS[kind].map(([action, label]) =>
      h("button", {
        type: "button",
        class: `action action-${action}`,
        "data-testid": `${action}-button`,
        "data-action": action,
        "aria-label": `${label}: ${issue.title || `issue ${issue.id}`}`,
        text: label,
      }),
    );
    for (const b of buttons) b.addEventListener("click", () => act(issue.id, b.dataset.action, buttons));
    p.actions.replaceChildren(...buttons);
    if (hadFocus) buttons[0].focus({ preventScroll: true });
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
  url.searchParams.set("token", state.token);
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
});

ui.disconnect.addEventListener("click", () => {
  stop();
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

/// `#project=<id>&token=<token>`: connect at once, then drop the token from the address bar.
function fromFragment() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const project = (params.get("project") ?? "").trim();
  const token = (params.get("token") ?? "").trim();
  if (!project && !token) return false;
  history.replaceState(null, "", location.pathname + location.search);
  if (!validProject(project) || !token) {
    ui.project.value = project;
    ui.connectError.textContent = "Cannot connect: the link needs #project=<id>&token=<token>.";
    ui.connectError.hidden = false;
    return true;
  }
  start(project, token);
  return true;
}

addEventListener("hashchange", fromFragment);

setStatus("idle");
renderFilterStatus();
state.dirty.chart = true;
schedule();
if (!fromFragment()) {
  const project = load(STORAGE.project);
  const token = load(STORAGE.token);
  ui.project.value = project;
  ui.token.value = token;
  if (validProject(project) && token) start(project, token);
}
