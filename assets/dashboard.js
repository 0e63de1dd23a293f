// @ts-check
// Mesher's live dashboard (SPEC §6), the page's entry module: native ES modules, no
// dependencies, no build step. This module wires the others (assets/js/), each of which
// owns its state:
//
//   connection.js  the WebSocket stream: auth, replay from the last seq, reconnects
//   feed.js        the live feed and its filters      filters.js  the filters, pure
//   list.js        the issue list and its search       search.js   the query terms, pure
//   overview.js    the unresolved count and the chart  chart.js    per-minute counts, bars
//   issue.js       the issue view (../event.js draws one event in full)
//   actions.js     the status buttons                  notices.js  error and lag notices
//   routing.js     the address fragment, pure          api.js      the HTTP API, the session
//   accounts.js    sign-in, the projects overview      people.js   their texts and rows, pure
//   settings.js    a project's settings page           setup.js    its snippets and texts, pure
//   mine.js        the user's tokens and password      copy.js     copying with a confirmation
//   format.js, dom.js, schedule.js                     helpers
//
// Events go to the feed and the chart, `issue` and `issue_count` messages keep the issue
// list and the unresolved count current. Everything the server sends is put into the page
// as text, never as HTML.

import { api, currentGeneration, currentProject, currentToken, projectPath, setSession } from "./js/api.js";
import {
  accept,
  afterSnapshot,
  hasSocket,
  initConnection,
  openStream,
  resetStream,
  setStatus,
  stopStream,
} from "./js/connection.js";
import * as accounts from "./js/accounts.js";
import { byId } from "./js/dom.js";
import {
  FEED_CAP,
  addToFeed,
  confirmFilters,
  dropPending,
  initFeed,
  levelPasses,
  loadRefused,
  renderFeed,
  renderFilterStatus,
  resetFeed,
  setApplied,
  syncFilters,
  wanted,
} from "./js/feed.js";
import * as issueView from "./js/issue.js";
import * as list from "./js/list.js";
import { showSecret } from "./js/mine.js";
import * as settings from "./js/settings.js";
import { initNotices, resetNotices, showError, showLagged } from "./js/notices.js";
import { countLive, countMessage, loadStats, renderChart, resetOverview } from "./js/overview.js";
import { parseFragment, settingsHash, validId, wantsSettings } from "./js/routing.js";
import { schedule } from "./js/schedule.js";

/** @typedef {import("./js/api.js").Issue} Issue */
/** @typedef {import("./js/api.js").ListedEvent} ListedEvent */

const REFRESH_MS = 60_000;
// How often the server's counts (unresolved issues, events per minute) are read again.
const STATS_MS = 10_000;
const STORAGE = { project: "mesher.project", token: "mesher.token" };

const ui = {
  form: byId("connect-form", HTMLFormElement),
  project: byId("project-input", HTMLInputElement),
  token: byId("token-input", HTMLInputElement),
  connect: byId("connect-button", HTMLButtonElement),
  disconnect: byId("disconnect-button", HTMLButtonElement),
  connectError: byId("connect-error", HTMLParagraphElement),
  projectLabel: byId("project-label", HTMLSpanElement),
  settingsLink: byId("settings-link", HTMLAnchorElement),
};

/** The list is read again every minute, the counts every few seconds, while live. */
const timers = { refresh: 0, stats: 0 };
/** A row's link was followed: Back from that issue is the browser's Back. */
let navigatedFromList = false;
/** A project just created here: its token, shown once on its settings page. */
let createdToken = { project: "", token: "" };

/** @param {string} key */
function load(key) {
  try {
    return localStorage.getItem(key) ?? "";
  } catch {
    return "";
  }
}

/**
 * @param {string} key
 * @param {string} value
 */
function save(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    // Storage may be disabled; the dashboard works without it.
  }
}

// ---------------------------------------------------------------------------------------
// What the stream says

/**
 * One event from the stream (`live`) or from the events API (backfill).
 * @param {unknown} seq
 * @param {number} issueId
 * @param {ListedEvent} event
 * @param {boolean} live
 */
function addEvent(seq, issueId, event, live) {
  if (!accept(seq)) return;
  // The chart counts live events by minute of receipt until the server's counts replace
  // them; stored ones are in those counts.
  if (live) countLive(event.level);
  addToFeed(seq, issueId, event);
  // Issue counts: only for events newer than the issue list's snapshot.
  if (live && afterSnapshot(seq)) {
    list.countEvent(issueId, event);
    issueView.viewEvent(issueId, event);
  }
}

/**
 * @param {unknown} action
 * @param {Issue | undefined} issue
 */
function onIssueMessage(action, issue) {
  if (!issue || typeof issue.id !== "number") return;
  list.upsertIssue(issue);
  // The message's count includes the event that caused it, which comes right after (when
  // it passes this view's level filter): do not count that one twice.
  if ((action === "new" || action === "regressed") && levelPasses(issue.level)) {
    list.expectTriggerOf(issue.id);
    issueView.expectTriggerOf(issue.id);
  }
}

/**
 * Issues were merged: the list drops the folded ones; a view open on one of them moves to
 * the issue it was merged into (the folded one is gone).
 * @param {Issue | undefined} issue
 * @param {number[]} folded
 */
function onMerged(issue, folded) {
  if (!issue || typeof issue.id !== "number") return;
  list.mergedInto(issue, folded);
  const open = Number(new URLSearchParams(location.hash.slice(1)).get("issue"));
  if (folded.includes(open)) location.replace(list.hashFor({ issue: issue.id }));
}

/** The unresolved count and the events per minute, the project's and the open issue's. */
function loadCounts() {
  issueView.loadIssueStats();
  loadStats().then(list.countChanged);
  loadRefused();
}

/**
 * The stream is subscribed (again): what it missed is replayed, the list and the counts
 * are read anew.
 * @param {boolean} first
 * @param {number} seq
 * @param {import("./js/filters.js").Filters} filters
 */
function onSubscribed(first, seq, filters) {
  setApplied(filters);
  if (first) backfill(seq);
  list.loadIssues();
  loadCounts();
  clearInterval(timers.refresh);
  timers.refresh = setInterval(list.loadIssues, REFRESH_MS);
  clearInterval(timers.stats);
  timers.stats = setInterval(loadCounts, STATS_MS);
  syncFilters();
}

/** @param {any} msg */
function onMessage(msg) {
  switch (msg.type) {
    case "event":
      addEvent(msg.seq, msg.issue_id, msg.event ?? {}, true);
      break;
    case "issue":
      if (msg.action === "merged" && Array.isArray(msg.merged)) onMerged(msg.issue, msg.merged);
      else onIssueMessage(msg.action, msg.issue);
      break;
    case "issue_count":
      countMessage(msg.count);
      list.countChanged();
      break;
    case "filters_updated":
      confirmFilters(msg.filters);
      break;
    case "lagged":
      showLagged(msg.dropped);
      list.loadIssues();
      loadCounts();
      break;
    case "error":
      dropPending();
      renderFilterStatus();
      showError(`The server said: ${msg.error}`);
      break;
    default:
      break;
  }
}

/**
 * The most recent stored events, so the feed and chart do not start empty.
 * @param {number} upto
 */
async function backfill(upto) {
  if (upto <= 0) return;
  const gen = currentGeneration();
  let body;
  try {
    body = await api(projectPath(`/events?since=${Math.max(0, upto - FEED_CAP)}&limit=${FEED_CAP}`));
  } catch {
    return; // live events still arrive
  }
  if (gen !== currentGeneration() || !Array.isArray(body?.events)) return;
  for (const e of body.events) {
    if (e.seq <= upto) addEvent(e.seq, e.issue_id, e, false);
  }
}

function stopTimers() {
  clearInterval(timers.refresh);
  clearInterval(timers.stats);
}

// ---------------------------------------------------------------------------------------
// Connecting

function stop() {
  stopStream();
  stopTimers();
  dropPending();
  ui.disconnect.disabled = true;
}

/** @param {string} reason */
function fail(reason) {
  stop();
  setStatus("error", reason);
  ui.connectError.textContent = `Cannot connect: ${reason}`;
  ui.connectError.hidden = false;
  // Signed in, the id/token form is not shown: say it in the error notice, or, when the
  // session has ended, go back to the sign-in form.
  if (document.body.dataset.auth === "cookie") {
    showError(`Cannot open the project: ${reason}`);
    accounts.checkSession().then((signedIn) => {
      if (signedIn || document.body.dataset.auth !== "cookie") return;
      leaveProject();
      delete document.body.dataset.auth;
      history.replaceState(null, "", location.pathname + location.search);
      accounts.showSignIn("Your session has ended: sign in again.");
    });
  }
}

function reset() {
  resetStream();
  resetFeed();
  list.resetList();
  resetOverview();
  resetNotices();
}

/**
 * Opens `project`: with its `token`, or (null) with the signed-in user's session cookie.
 * @param {string} project
 * @param {string | null} token
 */
function start(project, token) {
  settings.closeSettings();
  stop();
  reset();
  issueView.closeIssue();
  setSession(project, token);
  if (token) {
    save(STORAGE.project, project);
    save(STORAGE.token, token);
    ui.project.value = project;
    ui.token.value = token;
    delete document.body.dataset.auth;
  } else {
    document.body.dataset.auth = "cookie";
  }
  accounts.setView("project");
  ui.connectError.hidden = true;
  const name = token ? null : accounts.projectName(project);
  ui.projectLabel.textContent = name ? `${name} (project ${project})` : `project ${project}`;
  ui.settingsLink.href = settingsHash(project);
  ui.disconnect.disabled = false;
  renderFilterStatus();
  openStream();
}

/** @param {SubmitEvent} e */
function onConnectSubmit(e) {
  e.preventDefault();
  const project = ui.project.value.trim();
  const token = ui.token.value.trim();
  let problem = "";
  if (!validId(project)) problem = "the project id is a positive whole number";
  else if (!token) problem = "paste the project's token";
  if (problem) {
    ui.connectError.textContent = `Cannot connect: ${problem}.`;
    ui.connectError.hidden = false;
    (validId(project) ? ui.token : ui.project).focus();
    return;
  }
  start(project, token);
  history.replaceState(null, "", list.hashFor());
}

// ---------------------------------------------------------------------------------------
// The address fragment (routing.js)

/**
 * Makes the page show what the fragment says: connect (`project` and `token`; the token
 * is then dropped from the address bar), the list's search and sort, and the open issue
 * and event. Called on load, on `hashchange` and on Back/Forward.
 */
function route() {
  const f = parseFragment(location.hash);
  if (!f.any) return false;
  const signedIn = accounts.signedInUser() !== null;
  // A project's settings page: signed in only (signed out, once signed in).
  if (wantsSettings(location.hash) && validId(f.project) && !f.token) {
    if (signedIn) {
      openSettingsPage(f.project);
    } else {
      accounts.rememberDestination(location.hash);
      history.replaceState(null, "", location.pathname + location.search);
      leaveProject();
      accounts.showSignIn("Sign in to open the project's settings.");
    }
    return true;
  }
  if (f.token || f.project !== currentProject()) {
    /** @type {string | null} */
    let token = f.token;
    // Signed in, `#project=<id>` opens the project with the session cookie.
    if (!token && signedIn && validId(f.project)) token = null;
    else if (!token && !signedIn && validId(f.project) && load(STORAGE.project) !== f.project) {
      // An alert's link, opened signed out: sign in first, then open what it names.
      accounts.rememberDestination(location.hash);
      history.replaceState(null, "", location.pathname + location.search);
      accounts.showSignIn(f.issue !== null ? "Sign in to open this issue." : "Sign in to open this project.");
      return true;
    } else if (!token && validId(f.project) && load(STORAGE.project) === f.project) token = load(STORAGE.token);
    if (!validId(f.project) || token === "") {
      history.replaceState(null, "", location.pathname + location.search);
      ui.project.value = f.project;
      ui.connectError.textContent = "Cannot connect: the link needs #project=<id>&token=<token>.";
      ui.connectError.hidden = false;
      return true;
    }
    const searchChanged = list.showSearch(f.query, f.sort);
    if (f.project !== currentProject() || token !== currentToken() || !hasSocket()) start(f.project, token);
    else if (searchChanged) list.reloadList();
  } else if (list.showSearch(f.query, f.sort)) {
    list.reloadList();
  }
  if (f.token) history.replaceState(null, "", list.hashFor({ issue: f.issue, event: f.event || null }));
  if (f.issue !== null) issueView.openIssue(f.issue, f.event || null, { fromList: navigatedFromList });
  else issueView.closeIssue();
  navigatedFromList = false;
  return true;
}

// ---------------------------------------------------------------------------------------
// Wiring

initNotices();
initFeed();
initConnection({
  filters: wanted,
  subscribed: onSubscribed,
  message: onMessage,
  closed: () => {
    dropPending();
    renderFilterStatus();
    stopTimers();
  },
  failed: fail,
});
list.initList({
  upserted: issueView.mergeIssue,
  followed: () => {
    navigatedFromList = true;
  },
});
issueView.initIssueView({
  closed: () => {
    schedule(renderFeed);
    schedule(list.renderIssues);
    schedule(renderChart);
  },
});
ui.form.addEventListener("submit", onConnectSubmit);
ui.disconnect.addEventListener("click", () => {
  stop();
  issueView.closeIssue();
  setStatus("idle");
  ui.connect.focus();
});
addEventListener("hashchange", () => {
  // No project in the address (the Projects link, Back): the signed-in user's overview.
  if (!route() && accounts.signedInUser()) openOverview();
});
accounts.initAccounts({
  signedIn: () => {
    const destination = accounts.takeDestination();
    history.replaceState(null, "", location.pathname + location.search + destination);
    if (!destination || !route()) openOverview();
  },
  created: (project, token) => {
    createdToken = { project, token };
    location.hash = settingsHash(project);
  },
  signedOut: () => {
    leaveProject();
    delete document.body.dataset.auth;
    history.replaceState(null, "", location.pathname + location.search);
  },
});
settings.initSettings({
  keyRotated: (dsn) => accounts.setDsn(parseFragment(location.hash).project, dsn),
  signOut: () => {
    accounts.signOutAndShowForm();
  },
});
// The chart moves on with the clock.
setInterval(() => {
  schedule(renderChart);
  schedule(issueView.renderChart);
}, 15_000);

setStatus("idle");
renderFilterStatus();
schedule(renderChart);
boot();

/** Closes the open project (its stream, its views) without showing anything else. */
function leaveProject() {
  settings.closeSettings();
  stop();
  issueView.closeIssue();
  reset();
  setSession("", null);
  ui.projectLabel.textContent = "";
  setStatus("idle");
}

/** The signed-in user's projects overview. */
function openOverview() {
  leaveProject();
  delete document.body.dataset.auth;
  accounts.showProjects();
}

/**
 * Project `project`'s settings page (the user is signed in).
 * @param {string} project
 */
async function openSettingsPage(project) {
  leaveProject();
  delete document.body.dataset.auth;
  // A project this page has not heard of yet (made elsewhere, or a moment ago).
  if (!accounts.projectInfo(project)) await accounts.checkSession();
  if (location.hash !== settingsHash(project)) return; // the person moved on meanwhile
  const info = accounts.projectInfo(project);
  accounts.setView("settings");
  ui.projectLabel.textContent = info?.name ? `${info.name} (project ${project})` : `project ${project}`;
  settings.openSettings(project, {
    name: info?.name ?? null,
    dsn: info?.dsn ?? "",
    user: accounts.signedInUser(),
    projectHash: `#project=${encodeURIComponent(project)}`,
  });
  if (createdToken.project === project && createdToken.token) {
    showSecret("The new project's token (for scripts and #project=…&token=… links), shown once:", createdToken.token);
  }
  createdToken = { project: "", token: "" };
}

/**
 * The first view: what the address asks for; else, signed in, the projects overview;
 * else the sign-in form (and the id/token form, which a stored token fills and opens).
 * The server is asked who is signed in only when this browser has signed in before: a
 * page that never did asks nothing.
 */
async function boot() {
  if (accounts.maySignedIn()) await accounts.checkSession();
  const signedIn = accounts.signedInUser() !== null;
  if (!signedIn) accounts.showSignIn();
  if (route()) return;
  if (signedIn) {
    openOverview();
    return;
  }
  const project = load(STORAGE.project);
  const token = load(STORAGE.token);
  ui.project.value = project;
  ui.token.value = token;
  if (validId(project) && token) {
    start(project, token);
    history.replaceState(null, "", list.hashFor());
  }
}
