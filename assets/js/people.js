// @ts-check
// Accounts as the page shows them (docs/PROTOCOL.md "People"): what a failed sign-in
// says, a wait in words, the projects overview's rows. Pure: no DOM, no state.

/**
 * A project as `GET /api/v1/me` lists it.
 * @typedef {{ id: number, name?: string, dsn?: string, unresolved?: number }} MyProject
 */

/**
 * A wait of `seconds` in words: "1 second", "45 seconds", "2 minutes" (rounded up).
 * @param {number} seconds
 */
export function waitWords(seconds) {
  const s = Math.max(1, Math.ceil(Number.isFinite(seconds) ? seconds : 1));
  if (s < 60) return `${s} ${s === 1 ? "second" : "seconds"}`;
  const m = Math.ceil(s / 60);
  return `${m} ${m === 1 ? "minute" : "minutes"}`;
}

/**
 * What a failed sign-in tells the person: the server's message, or for a 429 how long
 * to wait (its `Retry-After`, in seconds).
 * @param {number | undefined} status undefined when the server was not reached
 * @param {string} reason the server's `error`
 * @param {string} [retryAfter]
 */
export function signInError(status, reason, retryAfter = "") {
  if (status === undefined) return `Cannot reach the server: ${reason}.`;
  if (status === 429) {
    const wait = Number.parseInt(retryAfter, 10);
    const when = Number.isFinite(wait) && wait > 0 ? `in ${waitWords(wait)}` : "later";
    return `Too many failed sign-ins for this e-mail: try again ${when}.`;
  }
  const text = reason.trim() || `the server answered ${status}`;
  return `${text.charAt(0).toUpperCase()}${text.slice(1)}.`;
}

/**
 * The overview's rows, by name: each project's id, name, unresolved count and the
 * fragment that opens it. Anything malformed in the answer is left out.
 * @param {unknown} projects `projects` of `GET /api/v1/me`
 * @returns {{ id: string, name: string, unresolved: number, hash: string }[]}
 */
export function projectRows(projects) {
  if (!Array.isArray(projects)) return [];
  return projects
    .filter((p) => p && typeof p.id === "number" && Number.isSafeInteger(p.id) && p.id > 0)
    .map((p) => ({
      id: String(p.id),
      name: typeof p.name === "string" && p.name ? p.name : `project ${p.id}`,
      unresolved: typeof p.unresolved === "number" && p.unresolved >= 0 ? p.unresolved : 0,
      hash: `#project=${p.id}`,
    }))
    .sort((a, b) => a.name.localeCompare(b.name) || Number(a.id) - Number(b.id));
}
