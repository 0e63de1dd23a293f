// @ts-check
// A project's settings page (docs/PROTOCOL.md "People", "Alerts"): its DSN with a copy
// button and setup snippets, its webhooks (add, send a test, remove), the user's e-mail
// alerts, and for admins its members and the rotation of its token and ingest key. The
// user's own settings (API tokens, password, sign-out) are mine.js's, on the same page.
// Every request is a same-origin fetch with the session cookie; every failure is shown
// next to what failed, never thrown.

import { ApiError, fetchJson, messageOf, statusOf } from "./api.js";
import { copyText } from "./copy.js";
import { byId, h } from "./dom.js";
import * as mine from "./mine.js";
import { DEFAULT_TRIGGERS, TRIGGERS, memberRows, snippets, testResult, triggerWords } from "./setup.js";

/** @typedef {{ id?: number, email?: string, admin?: boolean }} User */
/** @typedef {{ id: number, url?: string, on?: string[], format?: string }} Hook */

const view = byId("settings-view", HTMLElement);
const template = byId("settings-template", HTMLTemplateElement);

/** The page's elements, looked up each time its content is put in (see {@link mount}). */
function lookUp() {
  return {
    heading: byId("settings-heading", HTMLHeadingElement),
    back: byId("settings-back", HTMLAnchorElement),
    dsn: byId("dsn-value", HTMLElement),
    dsnCopy: byId("dsn-copy", HTMLButtonElement),
    dsnCopied: byId("dsn-copied", HTMLSpanElement),
    snippets: byId("snippets", HTMLDivElement),
    hooks: byId("webhook-list", HTMLUListElement),
    hooksEmpty: byId("webhooks-empty", HTMLParagraphElement),
    hookForm: byId("webhook-form", HTMLFormElement),
    hookUrl: byId("webhook-url", HTMLInputElement),
    hookFormat: byId("webhook-format", HTMLSelectElement),
    hookTriggers: byId("webhook-triggers", HTMLFieldSetElement),
    hookAdd: byId("webhook-add", HTMLButtonElement),
    hookError: byId("webhook-error", HTMLParagraphElement),
    emailOn: byId("email-on", HTMLInputElement),
    emailAddress: byId("email-address", HTMLSpanElement),
    emailStatus: byId("email-status", HTMLParagraphElement),
    emailError: byId("email-error", HTMLParagraphElement),
    membersCard: byId("members-card", HTMLElement),
    members: byId("member-list", HTMLUListElement),
    membersEmpty: byId("members-empty", HTMLParagraphElement),
    memberForm: byId("member-form", HTMLFormElement),
    memberEmail: byId("member-email", HTMLInputElement),
    memberAdd: byId("member-add", HTMLButtonElement),
    memberError: byId("member-error", HTMLParagraphElement),
    secretsCard: byId("secrets-card", HTMLElement),
    rotateTokenBox: byId("rotate-token-box", HTMLDivElement),
    rotateKeyBox: byId("rotate-key-box", HTMLDivElement),
    rotateError: byId("rotate-error", HTMLParagraphElement),
  };
}

/** @type {ReturnType<typeof lookUp>} */
let ui;

/** The project shown ("" when none), and a count that moves on with every page shown. */
let project = "";
let shown = 0;
let dsn = "";
/** @type {{ keyRotated: (dsn: string) => void, signOut: () => void }} */
let handlers = { keyRotated() {}, signOut() {} };

/**
 * A same-origin JSON request; its body, or an {@link ApiError}.
 * @param {string} path
 * @param {string} [method]
 * @param {unknown} [body]
 */
async function call(path, method = "GET", body = undefined) {
  /** @type {RequestInit} */
  const init = { method };
  if (body !== undefined) {
    init.headers = { "Content-Type": "application/json" };
    init.body = JSON.stringify(body);
  }
  return (await fetchJson(path, init)).body;
}

/** @param {string} rest */
function projectApi(rest) {
  return `/api/v1/projects/${encodeURIComponent(project)}${rest}`;
}

/**
 * A failure as a sentence for an inline alert.
 * @param {string} what
 * @param {unknown} err
 */
function failure(what, err) {
  if (statusOf(err) === undefined) return `${what}: cannot reach the server (${messageOf(err)}).`;
  const reason = err instanceof ApiError ? err.reason : messageOf(err);
  return `${what}: ${reason || `the server answered ${statusOf(err)}`}.`;
}

/**
 * Shows `text` in an inline alert, or hides it ("").
 * @param {HTMLElement} el
 * @param {string} text
 */
function say(el, text) {
  el.textContent = text;
  el.hidden = !text;
}

/**
 * Whether answers for the page shown at `mark` are still wanted.
 * @param {number} mark
 */
function current(mark) {
  return mark === shown && project !== "";
}

// ---------------------------------------------------------------------------------------
// The DSN and the setup snippets

/** @param {string} value */
function showDsn(value) {
  dsn = value;
  ui.dsn.textContent = value || "(unknown: reload the page)";
  ui.dsnCopy.disabled = !value;
  ui.dsnCopied.textContent = "";
  renderSnippets();
}

function renderSnippets() {
  const list = dsn ? snippets(dsn) : [];
  const tabs = h("div", { class: "snippet-tabs", role: "group", "aria-label": "Language" });
  const panels = list.map((s, i) => {
    const code = h("code", { text: s.code });
    const status = h("span", { class: "copied", role: "status", "aria-live": "polite" });
    const copy = h("button", { type: "button", class: "snippet-copy", "data-testid": `snippet-copy-${s.id}`, text: "Copy" });
    copy.addEventListener("click", () => copyText(s.code, code, status));
    return h(
      "div",
      { class: "snippet", "data-testid": `snippet-${s.id}`, "data-snippet": s.id, hidden: i !== 0 },
      s.install ? h("p", { class: "snippet-install" }, "Install: ", h("code", { text: s.install })) : null,
      h("pre", { class: "snippet-code" }, code),
      h("div", { class: "copy-line" }, copy, status),
    );
  });
  list.forEach((s, i) => {
    const tab = h("button", {
      type: "button",
      class: "snippet-tab",
      "data-testid": `snippet-tab-${s.id}`,
      "aria-pressed": i === 0 ? "true" : "false",
      text: s.title,
    });
    tab.addEventListener("click", () => {
      for (const b of tabs.querySelectorAll("button")) b.setAttribute("aria-pressed", b === tab ? "true" : "false");
      panels.forEach((p, j) => {
        p.hidden = j !== i;
      });
    });
    tabs.append(tab);
  });
  ui.snippets.replaceChildren(tabs, ...panels);
}

// ---------------------------------------------------------------------------------------
// Webhooks

/** @param {number} mark */
async function loadHooks(mark) {
  try {
    const body = await call(projectApi("/webhooks"));
    if (!current(mark)) return;
    renderHooks(Array.isArray(body?.webhooks) ? body.webhooks : []);
    say(ui.hookError, "");
  } catch (err) {
    if (current(mark)) say(ui.hookError, failure("Cannot read the webhooks", err));
  }
}

/** @param {Hook[]} hooks */
function renderHooks(hooks) {
  ui.hooks.replaceChildren(...hooks.filter((x) => typeof x?.id === "number").map(hookRow));
  ui.hooksEmpty.hidden = hooks.length > 0;
}

/** @param {Hook} hook */
function hookRow(hook) {
  const result = h("p", { class: "row-result", "data-testid": "webhook-result", role: "status" });
  const test = h("button", { type: "button", "data-testid": "webhook-test", text: "Send test" });
  const remove = h("button", { type: "button", "data-testid": "webhook-remove", text: "Remove" });
  const row = h(
    "li",
    { class: "settings-row", "data-testid": "webhook-row", "data-webhook-id": hook.id },
    h(
      "div",
      { class: "row-main" },
      h("code", { class: "row-url", text: hook.url ?? "" }),
      h("span", { class: "muted", text: `on ${triggerWords(hook.on)} · ${hook.format ?? "json"}` }),
    ),
    h("div", { class: "row-actions" }, test, remove),
    result,
  );
  test.addEventListener("click", async () => {
    const mark = shown;
    test.disabled = true;
    result.className = "row-result";
    result.textContent = "Sending…";
    let r;
    try {
      r = testResult(200, await call(`/api/v1/webhooks/${hook.id}/test`, "POST"));
    } catch (err) {
      const reason = err instanceof ApiError ? err.reason : messageOf(err);
      r = testResult(statusOf(err), err instanceof ApiError ? { error: err.reason } : null, reason);
    }
    if (!current(mark)) return;
    test.disabled = false;
    result.textContent = r.text;
    result.className = r.ok ? "row-result ok" : "row-result bad";
  });
  remove.addEventListener("click", async () => {
    const mark = shown;
    remove.disabled = true;
    try {
      await call(`/api/v1/webhooks/${hook.id}`, "DELETE");
      if (current(mark)) await loadHooks(mark);
      ui.hookUrl.focus();
    } catch (err) {
      if (!current(mark)) return;
      remove.disabled = false;
      result.className = "row-result bad";
      result.textContent = failure("Not removed", err);
    }
  });
  return row;
}

function renderTriggerBoxes() {
  const legend = ui.hookTriggers.querySelector("legend");
  ui.hookTriggers.replaceChildren(
    ...(legend ? [legend] : []),
    ...TRIGGERS.map((t) =>
      h(
        "label",
        { class: "check" },
        h("input", { type: "checkbox", name: "on", value: t, checked: DEFAULT_TRIGGERS.includes(t) }),
        ` ${t}`,
      ),
    ),
  );
}

/** @param {SubmitEvent} e */
async function onAddHook(e) {
  e.preventDefault();
  const url = ui.hookUrl.value.trim();
  const on = [...ui.hookTriggers.querySelectorAll("input:checked")].map((i) => /** @type {HTMLInputElement} */ (i).value);
  if (!url) {
    say(ui.hookError, "Enter the URL that receives the alerts.");
    ui.hookUrl.focus();
    return;
  }
  if (on.length === 0) {
    say(ui.hookError, "Choose at least one issue change to be told of.");
    return;
  }
  const mark = shown;
  ui.hookAdd.disabled = true;
  try {
    const body = await call(projectApi("/webhooks"), "POST", { url, on, format: ui.hookFormat.value });
    if (!current(mark)) return;
    say(ui.hookError, "");
    ui.hookUrl.value = "";
    const secret = body?.webhook?.secret;
    if (typeof secret === "string") {
      mine.showSecret("The webhook's signing secret (X-Mesher-Signature), shown once:", secret);
    }
    await loadHooks(mark);
  } catch (err) {
    if (current(mark)) say(ui.hookError, failure("Not added", err));
  } finally {
    ui.hookAdd.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------
// E-mail alerts

/**
 * @param {unknown} on
 */
function showEmail(on) {
  const list = Array.isArray(on) ? on : [];
  ui.emailOn.checked = list.length > 0;
  ui.emailStatus.textContent = list.length > 0 ? `On: ${triggerWords(list)}.` : "Off.";
}

/** @param {number} mark */
async function loadEmail(mark) {
  ui.emailOn.disabled = true;
  try {
    const body = await call(projectApi("/email-alerts"));
    if (!current(mark)) return;
    if (typeof body?.email === "string") ui.emailAddress.textContent = body.email;
    showEmail(body?.on);
    say(ui.emailError, "");
  } catch (err) {
    if (current(mark)) say(ui.emailError, failure("Cannot read your e-mail alerts", err));
  } finally {
    if (current(mark)) ui.emailOn.disabled = false;
  }
}

async function onEmailChange() {
  const mark = shown;
  const want = ui.emailOn.checked;
  ui.emailOn.disabled = true;
  try {
    if (want) showEmail((await call(projectApi("/email-alerts"), "PUT", { on: DEFAULT_TRIGGERS }))?.on);
    else {
      await call(projectApi("/email-alerts"), "DELETE");
      showEmail([]);
    }
    if (current(mark)) say(ui.emailError, "");
  } catch (err) {
    if (!current(mark)) return;
    ui.emailOn.checked = !want;
    say(ui.emailError, failure(want ? "E-mail alerts not turned on" : "E-mail alerts not turned off", err));
  } finally {
    if (current(mark)) ui.emailOn.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------
// Members and secrets (admins)

/** @param {number} mark */
async function loadMembers(mark) {
  try {
    const body = await call(projectApi("/members"));
    if (!current(mark)) return;
    const rows = memberRows(body?.members);
    ui.members.replaceChildren(...rows.map(memberRow));
    ui.membersEmpty.hidden = rows.length > 0;
    say(ui.memberError, "");
  } catch (err) {
    if (current(mark)) say(ui.memberError, failure("Cannot read the members", err));
  }
}

/** @param {{ email: string, admin: boolean }} m */
function memberRow(m) {
  const remove = h("button", { type: "button", "data-testid": "member-remove", text: "Remove" });
  remove.addEventListener("click", async () => {
    const mark = shown;
    remove.disabled = true;
    try {
      await call(projectApi(`/members/${encodeURIComponent(m.email)}`), "DELETE");
      if (current(mark)) await loadMembers(mark);
      ui.memberEmail.focus();
    } catch (err) {
      if (!current(mark)) return;
      remove.disabled = false;
      say(ui.memberError, failure(`${m.email} not removed`, err));
    }
  });
  return h(
    "li",
    { class: "settings-row", "data-testid": "member-row", "data-email": m.email },
    h("div", { class: "row-main" }, h("span", { class: "row-name", text: m.email }), m.admin ? h("span", { class: "muted", text: "admin" }) : null),
    h("div", { class: "row-actions" }, remove),
  );
}

/** @param {SubmitEvent} e */
async function onAddMember(e) {
  e.preventDefault();
  const email = ui.memberEmail.value.trim();
  if (!email) {
    say(ui.memberError, "Enter the e-mail of a user (mesher user create makes one).");
    ui.memberEmail.focus();
    return;
  }
  const mark = shown;
  ui.memberAdd.disabled = true;
  try {
    await call(projectApi(`/members/${encodeURIComponent(email)}`), "PUT");
    if (!current(mark)) return;
    ui.memberEmail.value = "";
    await loadMembers(mark);
  } catch (err) {
    if (current(mark)) say(ui.memberError, failure(`${email} not added`, err));
  } finally {
    ui.memberAdd.disabled = false;
  }
}

/**
 * A rotate button that asks first: its box shows the question with the real button and
 * Cancel; the answer comes back to the original button.
 * @param {HTMLDivElement} box
 * @param {string} question
 * @param {string} label
 * @param {() => Promise<void>} act
 */
function confirmable(box, question, label, act) {
  const first = /** @type {HTMLButtonElement} */ (box.querySelector("button"));
  first.addEventListener("click", () => {
    const yes = h("button", { type: "button", class: "danger", "data-testid": `${first.id}-confirm`, text: label });
    const no = h("button", { type: "button", "data-testid": `${first.id}-cancel`, text: "Cancel" });
    const restore = () => {
      box.replaceChildren(first);
      first.focus();
    };
    no.addEventListener("click", restore);
    yes.addEventListener("click", async () => {
      yes.disabled = true;
      no.disabled = true;
      await act();
      restore();
    });
    box.replaceChildren(h("p", { class: "confirm-question", text: question }), yes, no);
    no.focus();
  });
}

async function rotateToken() {
  const mark = shown;
  try {
    const body = await call(projectApi("/rotate-token"), "POST");
    if (!current(mark)) return;
    say(ui.rotateError, "");
    if (typeof body?.token === "string") mine.showSecret("The project's new token, shown once:", body.token);
  } catch (err) {
    if (current(mark)) say(ui.rotateError, failure("The token was not rotated", err));
  }
}

async function rotateKey() {
  const mark = shown;
  try {
    const body = await call(projectApi("/rotate-key"), "POST");
    if (!current(mark)) return;
    say(ui.rotateError, "");
    if (typeof body?.dsn === "string") {
      showDsn(body.dsn);
      handlers.keyRotated(body.dsn);
      mine.showSecret("The project's new DSN (the old ingest key is refused within 5 s):", body.dsn);
    }
  } catch (err) {
    if (current(mark)) say(ui.rotateError, failure("The ingest key was not rotated", err));
  }
}

// ---------------------------------------------------------------------------------------
// The page

/**
 * Shows project `id`'s settings to `user`.
 * @param {string} id
 * @param {{ name: string | null, dsn: string, user: User | null, projectHash: string }} about
 */
export function openSettings(id, { name, dsn: value, user, projectHash }) {
  project = id;
  const mark = ++shown;
  mount();
  view.hidden = false;
  ui.heading.textContent = `Settings of ${name ?? `project ${id}`}`;
  ui.back.href = projectHash;
  showDsn(value);
  ui.hooks.replaceChildren();
  ui.hooksEmpty.hidden = true;
  say(ui.hookError, "");
  ui.emailAddress.textContent = user?.email ?? "";
  ui.emailStatus.textContent = "";
  say(ui.emailError, "");
  const admin = user?.admin === true;
  ui.membersCard.hidden = !admin;
  ui.secretsCard.hidden = !admin;
  ui.members.replaceChildren();
  say(ui.memberError, "");
  say(ui.rotateError, "");
  mine.openMine(user);
  loadHooks(mark);
  loadEmail(mark);
  if (admin) loadMembers(mark);
  ui.heading.focus();
}

/** Hides the page; answers still on their way are dropped. */
export function closeSettings() {
  project = "";
  shown++;
  view.hidden = true;
  mine.closeMine();
  // Out of the page while not shown: its forms and labels are not the page's.
  view.replaceChildren();
}

/** Puts the page's content (the template's) into the view and wires it. */
function mount() {
  view.replaceChildren(template.content.cloneNode(true));
  ui = lookUp();
  renderTriggerBoxes();
  ui.dsnCopy.addEventListener("click", () => copyText(dsn, ui.dsn, ui.dsnCopied));
  ui.hookForm.addEventListener("submit", onAddHook);
  ui.emailOn.addEventListener("change", onEmailChange);
  ui.memberForm.addEventListener("submit", onAddMember);
  confirmable(ui.rotateTokenBox, "Rotate the token? Scripts and links that use the old one stop working.", "Rotate token", rotateToken);
  confirmable(ui.rotateKeyBox, "Rotate the ingest key? Every SDK needs the new DSN; the old one is refused.", "Rotate key", rotateKey);
  mine.mountMine({ signOut: handlers.signOut });
}

/**
 * What the page tells the rest of the dashboard.
 * @param {{ keyRotated: (dsn: string) => void, signOut: () => void }} given
 */
export function initSettings(given) {
  handlers = given;
}
