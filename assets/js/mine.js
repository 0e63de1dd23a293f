// @ts-check
// The signed-in user's own settings, on the settings page (docs/PROTOCOL.md "People"):
// their API tokens (created, shown once, listed, deleted), their password, signing out,
// and the notice that shows a new secret once.

import { ApiError, fetchJson, messageOf, statusOf } from "./api.js";
import { copyText } from "./copy.js";
import { byId, h } from "./dom.js";
import { signInError } from "./people.js";

/** @typedef {{ id?: number, email?: string, admin?: boolean }} User */
/** @typedef {{ id: number, name?: string, created?: string }} Token */

/** Its elements, looked up each time the page's content is put in ({@link mountMine}). */
function lookUp() {
  return {
    secret: byId("settings-secret", HTMLDivElement),
    secretText: byId("settings-secret-text", HTMLParagraphElement),
    secretValue: byId("settings-secret-value", HTMLElement),
    secretCopy: byId("settings-secret-copy", HTMLButtonElement),
    secretCopied: byId("settings-secret-copied", HTMLSpanElement),
    secretDismiss: byId("settings-secret-dismiss", HTMLButtonElement),
    tokens: byId("token-list", HTMLUListElement),
    tokensEmpty: byId("tokens-empty", HTMLParagraphElement),
    tokenForm: byId("token-form", HTMLFormElement),
    tokenName: byId("token-name", HTMLInputElement),
    tokenCreate: byId("token-create", HTMLButtonElement),
    tokenError: byId("token-error", HTMLParagraphElement),
    passwordForm: byId("password-form", HTMLFormElement),
    passwordUser: byId("password-username", HTMLInputElement),
    current: byId("password-current", HTMLInputElement),
    next: byId("password-new", HTMLInputElement),
    change: byId("password-change", HTMLButtonElement),
    passwordDone: byId("password-done", HTMLParagraphElement),
    passwordError: byId("password-error", HTMLParagraphElement),
    signOut: byId("settings-signout", HTMLButtonElement),
  };
}

/** @type {ReturnType<typeof lookUp>} */
let ui;

/** Moves on whenever the page is shown or closed: older answers are dropped. */
let shown = 0;
let open = false;

/**
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

/**
 * @param {string} what
 * @param {unknown} err
 */
function failure(what, err) {
  if (statusOf(err) === undefined) return `${what}: cannot reach the server (${messageOf(err)}).`;
  const reason = err instanceof ApiError ? err.reason : messageOf(err);
  return `${what}: ${reason || `the server answered ${statusOf(err)}`}.`;
}

/**
 * @param {HTMLElement} el
 * @param {string} text
 */
function say(el, text) {
  el.textContent = text;
  el.hidden = !text;
}

/** @param {number} mark */
function current(mark) {
  return open && mark === shown;
}

/**
 * Shows a secret once, above the page, with a Copy button and a dismiss button.
 * @param {string} text what it is
 * @param {string} value
 */
export function showSecret(text, value) {
  ui.secretText.textContent = text;
  ui.secretValue.textContent = value;
  ui.secretCopied.textContent = "";
  ui.secret.hidden = false;
  ui.secretCopy.focus();
}

function hideSecret() {
  ui.secret.hidden = true;
  ui.secretValue.textContent = "";
}

/** @param {number} mark */
async function loadTokens(mark) {
  try {
    const body = await call("/api/v1/me/tokens");
    if (!current(mark)) return;
    /** @type {Token[]} */
    const tokens = Array.isArray(body?.tokens) ? body.tokens.filter((/** @type {any} */ t) => typeof t?.id === "number") : [];
    ui.tokens.replaceChildren(...tokens.map(tokenRow));
    ui.tokensEmpty.hidden = tokens.length > 0;
    say(ui.tokenError, "");
  } catch (err) {
    if (current(mark)) say(ui.tokenError, failure("Cannot read your API tokens", err));
  }
}

/** @param {Token} t */
function tokenRow(t) {
  const remove = h("button", { type: "button", "data-testid": "token-delete", text: "Delete" });
  remove.addEventListener("click", async () => {
    const mark = shown;
    remove.disabled = true;
    try {
      await call(`/api/v1/me/tokens/${t.id}`, "DELETE");
      if (current(mark)) await loadTokens(mark);
      ui.tokenName.focus();
    } catch (err) {
      if (!current(mark)) return;
      remove.disabled = false;
      say(ui.tokenError, failure("Not deleted", err));
    }
  });
  const created = typeof t.created === "string" || typeof t.created === "number" ? new Date(t.created) : null;
  return h(
    "li",
    { class: "settings-row", "data-testid": "token-row", "data-token-id": t.id },
    h(
      "div",
      { class: "row-main" },
      h("span", { class: "row-name", text: t.name ?? `token ${t.id}` }),
      created && !Number.isNaN(created.getTime())
        ? h("span", { class: "muted", text: `created ${created.toLocaleDateString()}` })
        : null,
    ),
    h("div", { class: "row-actions" }, remove),
  );
}

/** @param {SubmitEvent} e */
async function onCreateToken(e) {
  e.preventDefault();
  const name = ui.tokenName.value.trim();
  if (!name) {
    say(ui.tokenError, "Name the token (what uses it: ci, a script…).");
    ui.tokenName.focus();
    return;
  }
  const mark = shown;
  ui.tokenCreate.disabled = true;
  try {
    const body = await call("/api/v1/me/tokens", "POST", { name });
    if (!current(mark)) return;
    ui.tokenName.value = "";
    say(ui.tokenError, "");
    if (typeof body?.token === "string") showSecret(`Your API token "${name}", shown once:`, body.token);
    await loadTokens(mark);
  } catch (err) {
    if (current(mark)) say(ui.tokenError, failure("Not created", err));
  } finally {
    ui.tokenCreate.disabled = false;
  }
}

/** @param {SubmitEvent} e */
async function onChangePassword(e) {
  e.preventDefault();
  ui.passwordDone.textContent = "";
  const old = ui.current.value;
  const next = ui.next.value;
  if (!old || !next) {
    say(ui.passwordError, old ? "Enter the new password." : "Enter your current password.");
    (old ? ui.next : ui.current).focus();
    return;
  }
  if ([...next].length < 10) {
    say(ui.passwordError, "The new password needs 10 characters or more.");
    ui.next.focus();
    return;
  }
  const mark = shown;
  ui.change.disabled = true;
  try {
    await call("/api/v1/me/password", "PUT", { current: old, new: next });
    if (mark !== shown) return;
    ui.current.value = "";
    ui.next.value = "";
    say(ui.passwordError, "");
    ui.passwordDone.textContent = "Password changed. Your other sessions are signed out.";
  } catch (err) {
    if (mark !== shown) return;
    const status = statusOf(err);
    const text =
      status === 401 || status === 429 || status === undefined
        ? signInError(status, err instanceof ApiError ? err.reason : messageOf(err), err instanceof ApiError ? err.retryAfter : "")
        : failure("Not changed", err);
    say(ui.passwordError, text);
    (status === 401 ? ui.current : ui.next).focus();
  } finally {
    ui.change.disabled = false;
  }
}

/**
 * Shows the user's own settings.
 * @param {User | null} user
 */
export function openMine(user) {
  open = true;
  const mark = ++shown;
  hideSecret();
  ui.passwordUser.value = user?.email ?? "";
  ui.current.value = "";
  ui.next.value = "";
  ui.passwordDone.textContent = "";
  say(ui.passwordError, "");
  say(ui.tokenError, "");
  loadTokens(mark);
}

/** Hides them (and any secret shown). */
export function closeMine() {
  open = false;
  shown++;
  if (ui) hideSecret();
}

/**
 * Looks up and wires the forms, just put into the page.
 * @param {{ signOut: () => void }} given
 */
export function mountMine(given) {
  ui = lookUp();
  ui.secretDismiss.addEventListener("click", hideSecret);
  ui.secretCopy.addEventListener("click", () => copyText(ui.secretValue.textContent ?? "", ui.secretValue, ui.secretCopied));
  ui.tokenForm.addEventListener("submit", onCreateToken);
  ui.passwordForm.addEventListener("submit", onChangePassword);
  ui.signOut.addEventListener("click", () => given.signOut());
}
