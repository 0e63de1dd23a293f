// @ts-check
// What the settings page says (docs/PROTOCOL.md "People", "Alerts"): the setup snippets
// made from a project's DSN, the webhook triggers, and what a test delivery's answer means
// for a person. Pure: no DOM, no state.

/** The webhook triggers, in the order the server lists them. */
export const TRIGGERS = ["new", "regressed", "resolved", "archived", "unresolved", "discarded"];
/** The triggers a new webhook or e-mail alert starts with. */
export const DEFAULT_TRIGGERS = ["new", "regressed"];

/**
 * What a DSN (`http://<key>@host[:port][/path]/<id>`) holds: the server's base address, the
 * ingest key and the project id; null for anything else.
 * @param {string} dsn
 * @returns {{ base: string, key: string, project: string } | null}
 */
export function parseDsn(dsn) {
  let url;
  try {
    url = new URL(dsn);
  } catch {
    return null;
  }
  const path = url.pathname.replace(/\/+$/, "");
  const cut = path.lastIndexOf("/");
  const project = path.slice(cut + 1);
  if (!url.username || !/^[1-9][0-9]*$/.test(project)) return null;
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  return { base: `${url.protocol}//${url.host}${path.slice(0, cut)}`, key: decodeURIComponent(url.username), project };
}

/**
 * A string as a double-quoted literal of Python and JavaScript alike.
 * @param {string} s
 */
function quoted(s) {
  return JSON.stringify(s);
}

/**
 * A string as one single-quoted shell word.
 * @param {string} s
 */
function shellWord(s) {
  return `'${s.replaceAll("'", "'\\''")}'`;
}

/**
 * @typedef {{ id: string, title: string, install: string, code: string }} Snippet
 */

/**
 * The setup snippets of a project, its DSN filled in: Python (sentry-sdk), browser
 * JavaScript (@sentry/browser), Node (@sentry/node), and curl to the native API. An
 * unreadable DSN leaves curl out.
 * @param {string} dsn
 * @returns {Snippet[]}
 */
export function snippets(dsn) {
  const d = quoted(dsn);
  /** @type {Snippet[]} */
  const out = [
    {
      id: "python",
      title: "Python",
      install: "pip install sentry-sdk",
      code: `import sentry_sdk\n\nsentry_sdk.init(dsn=${d})\n\n# Uncaught exceptions are sent; or send one yourself:\nsentry_sdk.capture_message("Hello from Python")`,
    },
    {
      id: "browser",
      title: "JavaScript (browser)",
      install: "npm install @sentry/browser",
      // (The package's name is spliced in: this module's own imports are read by a test.)
      code: `import * as Sentry from ${quoted("@sentry/browser")};\n\nSentry.init({ dsn: ${d} });\n\n// Uncaught errors are sent; or send one yourself:\nSentry.captureMessage("Hello from the browser");`,
    },
    {
      id: "node",
      title: "Node.js",
      install: "npm install @sentry/node",
      code: `const Sentry = require("@sentry/node");\n\nSentry.init({ dsn: ${d} });\n\n// Uncaught exceptions are sent; or send one yourself:\nSentry.captureMessage("Hello from Node");`,
    },
  ];
  const parts = parseDsn(dsn);
  if (parts) {
    out.push({
      id: "curl",
      title: "curl",
      install: "",
      code: [
        `curl -X POST ${shellWord(`${parts.base}/api/v1/events`)} \\`,
        `  -H ${shellWord(`Authorization: Bearer ${parts.key}`)} \\`,
        `  -H 'Content-Type: application/json' \\`,
        `  -d '{"message": "Hello from curl", "level": "error"}'`,
      ].join("\n"),
    });
  }
  return out;
}

/**
 * The triggers of a webhook or e-mail alert as words: "new, regressed".
 * @param {unknown} on
 */
export function triggerWords(on) {
  if (!Array.isArray(on) || on.length === 0) return "nothing";
  return on.filter((t) => typeof t === "string").join(", ");
}

/**
 * What a test delivery's answer tells the person.
 * @param {number | undefined} status the answer's HTTP status (undefined: no answer)
 * @param {any} body its JSON body
 * @param {string} [reason] the error text when it failed
 * @returns {{ ok: boolean, text: string }}
 */
export function testResult(status, body, reason = "") {
  if (status === undefined) return { ok: false, text: `Not sent: cannot reach Mesher (${reason}).` };
  if (status >= 200 && status < 300 && typeof body?.status === "number") {
    return { ok: true, text: `Delivered: the target answered ${body.status}.` };
  }
  const why = typeof body?.error === "string" && body.error ? body.error : reason || `Mesher answered ${status}`;
  return { ok: false, text: `Not delivered: ${why}.` };
}

/**
 * A project's members by e-mail, well-formed ones only.
 * @param {unknown} members `members` of `GET /api/v1/projects/<id>/members`
 * @returns {{ email: string, admin: boolean }[]}
 */
export function memberRows(members) {
  if (!Array.isArray(members)) return [];
  return members
    .filter((m) => m && typeof m.email === "string" && m.email)
    .map((m) => ({ email: m.email, admin: m.admin === true }))
    .sort((a, b) => a.email.localeCompare(b.email));
}
