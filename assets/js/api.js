// @ts-check
// The HTTP API (docs/API.md) as this page uses it, and the session it speaks for: the
// project, its token, and a generation that moves on with every new stream, so that an
// answer meant for an older one is dropped.

/**
 * An issue as the API and the stream describe it.
 * @typedef {{ id: number, title?: string, culprit?: string | null, level?: string, status?: string,
 *   event_count?: number, first_seen?: string, last_seen?: string }} Issue
 */
/**
 * A stored or live event's listed fields (`data` is what the SDK sent, where kept).
 * @typedef {{ id?: string, seq?: number, issue_id?: number, level?: string, environment?: string,
 *   release?: string, title?: string, message?: string, timestamp?: string, data?: unknown }} ListedEvent
 */

/** An answer that is not 2xx: `status` and the server's `error` text. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} reason
   * @param {string} [retryAfter]
   */
  constructor(status, reason, retryAfter = "") {
    super(`${status}: ${reason}`);
    this.status = status;
    this.reason = reason;
    /** The `Retry-After` header of a 429 ("" when none). */
    this.retryAfter = retryAfter;
  }
}

/**
 * The HTTP status of a failed request (undefined when it never got an answer).
 * @param {unknown} err
 */
export function statusOf(err) {
  return err instanceof ApiError ? err.status : undefined;
}

/**
 * What went wrong, for a person.
 * @param {unknown} err
 */
export function messageOf(err) {
  return err instanceof Error ? err.message : String(err);
}

/** @type {string | null} */
let project = null;
/** @type {string | null} */
let token = null;
let generation = 0;

/**
 * Speaks for `projectId` from now on: with `projectToken`, or with the signed-in user's
 * session cookie when it is null.
 * @param {string} projectId
 * @param {string | null} projectToken
 */
export function setSession(projectId, projectToken) {
  project = projectId;
  token = projectToken;
}

/** The project id (null before the first connect). */
export function currentProject() {
  return project;
}

/** The project token (null before the first connect, and when the session cookie speaks). */
export function currentToken() {
  return token;
}

/** Starts a new generation: answers to requests made before it are stale. */
export function nextGeneration() {
  return ++generation;
}

/** The current generation (see {@link nextGeneration}). */
export function currentGeneration() {
  return generation;
}

/**
 * `/api/v1/projects/<project><rest>`.
 * @param {string} rest
 */
export function projectPath(rest) {
  return `/api/v1/projects/${encodeURIComponent(project ?? "")}${rest}`;
}

/**
 * A request with the token; the JSON answer, or an {@link ApiError}.
 * @param {string} path
 * @param {{ method?: string, headers?: Record<string, string>, body?: string }} [options]
 * @returns {Promise<any>}
 */
export async function api(path, options = {}) {
  return (await request(path, options)).body;
}

/**
 * A GET of one page of a list: its JSON answer and the cursor of the next page (null on
 * the last), read from the answer's `Link` header.
 * @param {string} path
 * @returns {Promise<{ body: any, next: string | null }>}
 */
export async function apiPage(path) {
  const { body, response } = await request(path, {});
  return { body, next: nextCursor(response.headers.get("Link")) };
}

/**
 * The cursor of a `Link` header's next page: `<…>; rel="next"; results="true"; cursor="X"`
 * (as Sentry's API writes it); null when there is none or it has no results.
 * @param {string | null} link
 */
export function nextCursor(link) {
  for (const part of (link ?? "").split(/,(?=\s*<)/)) {
    /** @type {Record<string, string>} */
    const params = {};
    for (const m of part.matchAll(/;\s*([a-z]+)="([^"]*)"/gi)) params[m[1].toLowerCase()] = m[2];
    if (params.rel === "next" && params.results === "true" && params.cursor) return params.cursor;
  }
  return null;
}

/**
 * A same-origin request (the session cookie comes along, and a change carries the page's
 * Origin): its JSON body and the response; an `ApiError` for any answer but 2xx.
 * @param {string} path
 * @param {RequestInit} [init]
 * @returns {Promise<{ body: any, response: Response }>}
 */
export async function fetchJson(path, init = {}) {
  const response = await fetch(path, { ...init, cache: "no-store", credentials: "same-origin" });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const reason = body && typeof body.error === "string" ? body.error : response.statusText;
    throw new ApiError(response.status, reason, response.headers.get("Retry-After") ?? "");
  }
  return { body, response };
}

/**
 * @param {string} path
 * @param {{ method?: string, headers?: Record<string, string>, body?: string }} options
 * @returns {Promise<{ body: any, response: Response }>}
 */
async function request(path, options) {
  /** @type {Record<string, string>} */
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  Object.assign(headers, options.headers ?? {});
  return fetchJson(path, { ...options, headers });
}
