// @ts-check
// Signing in and the projects overview (docs/PROTOCOL.md "People"): the sign-in form, the
// signed-in user's projects with their unresolved counts (read again every few seconds
// while shown), and signing out. The session is the server's cookie (HttpOnly): the page
// keeps only a note that it signed in, so that a page never signed in asks nothing.
// Every request is a same-origin fetch: the cookie comes along, and the browser adds the
// Origin that the server requires of a change.

import { ApiError, fetchJson, messageOf, statusOf } from "./api.js";
import { byId, h } from "./dom.js";
import { projectRows, signInError } from "./people.js";
import { settingsHash } from "./routing.js";

/** @typedef {import("./people.js").MyProject} MyProject */
/** @typedef {{ id?: number, email?: string, admin?: boolean }} User */
/** @typedef {"signin" | "projects" | "project" | "settings"} View */

/** How often the overview's counts are read again. */
const OVERVIEW_MS = 3_000;
/** The note that this browser signed in (the cookie itself is not readable). */
const SIGNED_IN = "mesher.signedIn";

const ui = {
  signinView: byId("signin-view", HTMLElement),
  form: byId("signin-form", HTMLFormElement),
  email: byId("email-input", HTMLInputElement),
  password: byId("password-input", HTMLInputElement),
  submit: byId("signin-button", HTMLButtonElement),
  error: byId("signin-error", HTMLParagraphElement),
  sso: byId("sso", HTMLParagraphElement),
  ssoLink: byId("sso-link", HTMLAnchorElement),
  projectsView: byId("projects-view", HTMLElement),
  projects: byId("projects-list", HTMLUListElement),
  projectsEmpty: byId("projects-empty", HTMLParagraphElement),
  projectsError: byId("projects-error", HTMLParagraphElement),
  account: byId("account", HTMLDivElement),
  accountEmail: byId("account-email", HTMLSpanElement),
  signOut: byId("signout-button", HTMLButtonElement),
  newProject: byId("new-project-form", HTMLFormElement),
  newName: byId("new-project-input", HTMLInputElement),
  newButton: byId("new-project-button", HTMLButtonElement),
  newError: byId("new-project-error", HTMLParagraphElement),
};

/** @type {User | null} */
let user = null;
/** @type {MyProject[]} */
let projects = [];
let timer = 0;
/**
 * @typedef {{ signedIn: () => void, signedOut: () => void,
 *   created?: (id: string, token: string) => void }} Handlers
 */
/** @type {Handlers} */
let handlers = { signedIn() {}, signedOut() {} };

/** @param {string} value */
function note(value) {
  try {
    if (value) localStorage.setItem(SIGNED_IN, value);
    else localStorage.removeItem(SIGNED_IN);
  } catch {
    // Without storage the page asks the server each time.
  }
}

/** Whether this browser may hold a session (it signed in, or storage is unavailable). */
export function maySignedIn() {
  try {
    return localStorage.getItem(SIGNED_IN) === "1";
  } catch {
    return true;
  }
}

/**
 * @param {string} path
 * @param {RequestInit} [init]
 */
async function call(path, init = {}) {
  return (await fetchJson(path, init)).body;
}

/** The signed-in user (null when none). */
export function signedInUser() {
  return user;
}

/**
 * The name of project `id` among the user's, if known.
 * @param {string} id
 */
export function projectName(id) {
  const p = projects.find((x) => String(x.id) === id);
  return p && typeof p.name === "string" ? p.name : null;
}

/**
 * Project `id` as `GET /api/v1/me` listed it (its name and DSN), if it did.
 * @param {string} id
 * @returns {MyProject | null}
 */
export function projectInfo(id) {
  return projects.find((x) => String(x.id) === id) ?? null;
}

/**
 * Notes project `id`'s new DSN (its ingest key was rotated).
 * @param {string} id
 * @param {string} dsn
 */
export function setDsn(id, dsn) {
  const p = projectInfo(id);
  if (p) p.dsn = dsn;
}

/**
 * Asks the server who is signed in (`GET /api/v1/me`): true when someone is.
 * @returns {Promise<boolean>}
 */
export async function checkSession() {
  try {
    const body = await call("/api/v1/me");
    accept(body);
    return true;
  } catch (err) {
    if (statusOf(err) === 401) forget();
    return false;
  }
}

/** @param {any} body */
function accept(body) {
  user = body?.user ?? null;
  projects = Array.isArray(body?.projects) ? body.projects : [];
  note("1");
  ui.accountEmail.textContent = user?.email ?? "";
  ui.account.hidden = false;
  ui.newProject.hidden = user?.admin !== true;
}

function forget() {
  user = null;
  projects = [];
  note("");
  ui.account.hidden = true;
  ui.accountEmail.textContent = "";
}

/**
 * Shows one of the page's views: the sign-in form, the projects overview, or a project.
 * @param {View} view
 */
export function setView(view) {
  document.body.dataset.view = view;
  ui.signinView.hidden = view !== "signin";
  ui.projectsView.hidden = view !== "projects";
  ui.newError.hidden = true;
  clearInterval(timer);
  if (view === "projects") timer = setInterval(refresh, OVERVIEW_MS);
}

/**
 * The sign-in form, with `message` in its alert when given.
 * @param {string} [message]
 */
export function showSignIn(message = "") {
  setView("signin");
  ui.error.textContent = message;
  ui.error.hidden = !message;
  ui.submit.disabled = false;
  offerSso();
}

/** Shows "Sign in with SSO" when the server has a provider (`GET /api/v1/sign-in`). */
async function offerSso() {
  try {
    const options = await call("/api/v1/sign-in");
    ui.sso.hidden = !(options && options.sso === true);
  } catch {
    ui.sso.hidden = true;
  }
}

/** The view a signed-out visitor's link asked for (an alert's), opened once signed in. */
let destination = "";

/** @param {string} hash the address fragment to open after signing in */
export function rememberDestination(hash) {
  destination = hash;
}

/** The remembered fragment (once), or "". */
export function takeDestination() {
  const d = destination;
  destination = "";
  return d;
}

/** Before leaving for the provider: come back to this view, and ask who signed in. */
function onSso() {
  const next = location.pathname + (destination || location.hash);
  ui.ssoLink.href = `/auth/oidc/start?next=${encodeURIComponent(next)}`;
  note("1");
}

/** The projects overview (the user is signed in). */
export function showProjects() {
  setView("projects");
  renderProjects();
}

function renderProjects() {
  const rows = projectRows(projects);
  ui.projects.replaceChildren(
    ...rows.map((p) =>
      h(
        "li",
        { class: "project-row", "data-testid": "project-row", "data-project-id": p.id },
        h("a", { class: "project-link", href: p.hash, "data-testid": "project-link", text: p.name }),
        h(
          "span",
          { class: "project-count" },
          h("span", { class: "project-unresolved", "data-testid": "project-unresolved", text: String(p.unresolved) }),
          " unresolved",
        ),
        h("a", {
          class: "project-settings",
          href: settingsHash(p.id),
          "data-testid": "project-settings-link",
          "aria-label": `Settings of ${p.name}`,
          text: "Settings",
        }),
      ),
    ),
  );
  ui.projectsEmpty.hidden = rows.length > 0;
}

/** The overview's counts, read again. */
async function refresh() {
  try {
    const body = await call("/api/v1/me");
    if (document.body.dataset.view !== "projects") return;
    accept(body);
    ui.projectsError.hidden = true;
    renderProjects();
  } catch (err) {
    if (document.body.dataset.view !== "projects") return;
    if (statusOf(err) === 401) {
      forget();
      handlers.signedOut();
      showSignIn("Your session has ended: sign in again.");
    } else {
      ui.projectsError.textContent = `Cannot read the counts: ${messageOf(err)}`;
      ui.projectsError.hidden = false;
    }
  }
}

/** @param {SubmitEvent} e */
async function onSubmit(e) {
  e.preventDefault();
  const email = ui.email.value.trim();
  const password = ui.password.value;
  if (!email || !password) {
    ui.error.textContent = email ? "Enter your password." : "Enter your e-mail.";
    ui.error.hidden = false;
    (email ? ui.password : ui.email).focus();
    return;
  }
  ui.submit.disabled = true;
  ui.error.hidden = true;
  try {
    await call("/api/v1/session", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email, password }),
    });
    ui.password.value = "";
    if (!(await checkSession())) throw new ApiError(401, "the session was not kept (are cookies allowed?)");
    handlers.signedIn();
    // Keyboard users land on the first project.
    ui.projects.querySelector("a")?.focus();
  } catch (err) {
    const retryAfter = err instanceof ApiError ? err.retryAfter : "";
    const reason = err instanceof ApiError ? err.reason : messageOf(err);
    ui.error.textContent = signInError(statusOf(err), reason, retryAfter);
    ui.error.hidden = false;
    ui.password.focus();
  } finally {
    ui.submit.disabled = false;
  }
}

/** @param {SubmitEvent} e */
async function onNewProject(e) {
  e.preventDefault();
  const name = ui.newName.value.trim();
  if (!name) {
    ui.newError.textContent = "Name the project.";
    ui.newError.hidden = false;
    ui.newName.focus();
    return;
  }
  ui.newButton.disabled = true;
  ui.newError.hidden = true;
  try {
    const made = await call("/api/v1/projects", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name }),
    });
    ui.newName.value = "";
    await checkSession();
    if (typeof made?.id === "number") handlers.created?.(String(made.id), typeof made.token === "string" ? made.token : "");
    else renderProjects();
  } catch (err) {
    ui.newError.textContent = `The project was not created: ${err instanceof ApiError ? err.reason : messageOf(err)}.`;
    ui.newError.hidden = false;
    ui.newName.focus();
  } finally {
    ui.newButton.disabled = false;
  }
}

/** Signs out (the top bar's button, the settings page's) and shows the sign-in form. */
export async function signOutAndShowForm() {
  handlers.signedOut();
  await signOut();
  showSignIn();
  ui.email.focus();
}

/** Ends the session on the server (`DELETE /api/v1/session`) and forgets it here. */
export async function signOut() {
  clearInterval(timer);
  try {
    await call("/api/v1/session", { method: "DELETE" });
  } catch {
    // Ended already, or the server is away: this page forgets it either way.
  }
  forget();
}

/**
 * Wires the forms and the Sign out button.
 * @param {Handlers} given
 */
export function initAccounts(given) {
  handlers = given;
  ui.form.addEventListener("submit", onSubmit);
  ui.newProject.addEventListener("submit", onNewProject);
  ui.ssoLink.addEventListener("click", onSso);
  ui.signOut.addEventListener("click", signOutAndShowForm);
}
