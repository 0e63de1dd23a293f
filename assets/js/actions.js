// @ts-check
// An issue's status buttons (Resolve, Archive, Unresolve; Discard in the issue view) and
// what a click does: the change is POSTed with this connection's id, so the stream does
// not echo it back to this view, and the count follows at once.

import { api, messageOf } from "./api.js";
import { connectionId } from "./connection.js";
import { h } from "./dom.js";
import { showError } from "./notices.js";
import { countChangedSince, countMark, setCount, unresolvedCount } from "./overview.js";

/** @typedef {import("./api.js").Issue} Issue */
/**
 * After a click: the issue as the server now has it (null when the change failed).
 * @typedef {(issue: Issue | null) => void} Changed
 */

/** @type {Record<"unresolved" | "other", [string, string][]>} */
const ACTIONS = {
  unresolved: [
    ["resolve", "Resolve"],
    ["archive", "Archive"],
  ],
  other: [["unresolve", "Unresolve"]],
};

/**
 * Changes an issue's status.
 * @param {Issue} issue
 * @param {string} action
 * @param {HTMLButtonElement[]} buttons
 * @param {Changed} changed
 */
async function act(issue, action, buttons, changed) {
  const before = issue.status;
  const stamp = countMark();
  if (buttons.some((b) => b.getAttribute("aria-disabled") === "true")) return; // already busy
  // Not `disabled`: that would take the keyboard focus away from the button.
  for (const b of buttons) b.setAttribute("aria-disabled", "true");
  /** @type {Record<string, string>} */
  const headers = {};
  const origin = connectionId();
  if (origin) headers["X-Mesher-Origin"] = origin;
  /** @type {Issue | null} */
  let after = null;
  try {
    const body = await api(`/api/v1/issues/${issue.id}/${action}`, { method: "POST", headers });
    if (!body?.issue) throw new Error("the answer has no issue");
    after = body.issue;
    changed(body.issue);
    // The server's next `issue_count` is the truth; until then adjust the shown number,
    // unless a count arrived meanwhile (it already includes this change).
    const count = unresolvedCount();
    if (!countChangedSince(stamp) && count !== null && before !== body.issue.status) {
      if (before === "unresolved") setCount(Math.max(0, count - 1));
      else if (body.issue.status === "unresolved") setCount(count + 1);
    }
  } catch (err) {
    showError(`Could not ${action} issue ${issue.id}: ${messageOf(err)}`);
  } finally {
    for (const b of buttons) b.removeAttribute("aria-disabled");
    if (!after) changed(null);
  }
}

/**
 * The action buttons for an issue's status; `current()` gives the issue when clicked. The
 * issue view (`withDiscard`) also offers Discard, which asks to be clicked twice: its
 * future events are dropped. `kind` names the set, to tell when it must be made anew.
 * @param {Issue} issue
 * @param {() => Issue} current
 * @param {{ withDiscard?: boolean, changed: Changed }} options
 */
export function actionButtons(issue, current, { withDiscard = false, changed }) {
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
      act(current(), b.dataset.action ?? "", buttons, changed);
    });
  }
  return { kind: actionKind(issue, withDiscard), buttons };
}

/**
 * The kind of button set an issue gets (see {@link actionButtons}).
 * @param {Issue} issue
 * @param {boolean} withDiscard
 */
export function actionKind(issue, withDiscard) {
  const kind = issue.status === "unresolved" ? "unresolved" : "other";
  return withDiscard ? `${kind}:${issue.status}` : kind;
}

/**
 * Merges the issues `folded` into `target` (`POST /api/v1/issues/<target>/merge`), with this
 * connection's id so that the stream does not echo it back here: the merged issue and the
 * folded ids as the server answers them, or null when it failed (the error is shown).
 * @param {number} target
 * @param {number[]} folded
 * @returns {Promise<{ issue: Issue, merged: number[] } | null>}
 */
export async function mergeIssues(target, folded) {
  /** @type {Record<string, string>} */
  const headers = { "Content-Type": "application/json" };
  const origin = connectionId();
  if (origin) headers["X-Mesher-Origin"] = origin;
  try {
    const body = await api(`/api/v1/issues/${target}/merge`, {
      method: "POST",
      headers,
      body: JSON.stringify({ issues: folded }),
    });
    if (!body?.issue || !Array.isArray(body.merged)) throw new Error("the answer has no issue");
    return { issue: body.issue, merged: body.merged };
  } catch (err) {
    showError(`Could not merge the issues into issue ${target}: ${messageOf(err)}`);
    return null;
  }
}
