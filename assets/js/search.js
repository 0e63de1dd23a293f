// @ts-check
// The issue search (SPEC §3.1) as far as the page judges it: the query's terms, parsed as
// the server parses them (src/model/search.rs), and whether an issue the stream reports
// belongs in the list. Pure: no DOM, no state. The cases in tests/search_cases.json are
// run against both this parser (tests/js/search.test.js) and the server's.

export const DEFAULT_QUERY = "is:unresolved";
/** Most terms a query may have. */
export const MAX_TERMS = 32;
/** Longest query, in characters (code points). */
export const MAX_QUERY_CHARS = 1024;

const STATUSES = ["unresolved", "resolved", "archived", "discarded"];
const LEVELS = ["debug", "info", "warning", "error", "fatal"];
/** Rust's `char::is_whitespace` (Unicode White_Space); JavaScript's `\s` differs. */
const WHITESPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;
/** A key: tag key characters (Sentry's) up to a colon. */
const KEY = /([A-Za-z0-9_.\/-]+):/y;

/**
 * One search term, as tests/search_cases.json spells it.
 * @typedef {{ kind: "is" | "level" | "environment" | "release" | "text", value: string }
 *   | { kind: "tag", key: string, value: string }} Term
 */
/** @typedef {{ terms: Term[] } | { error: string }} Parsed */
/**
 * What an issue's own fields say (the list's rows, the stream's `issue` messages).
 * @typedef {{ title?: string | null, culprit?: string | null, status?: string, level?: string }} IssueFields
 */

/**
 * Splits a query into raw tokens; a string is the reason it cannot be.
 * @param {string} q
 * @returns {{ key: string | null, value: string, quoted: boolean }[] | string}
 */
function tokens(q) {
  const out = [];
  let i = 0;
  while (i < q.length) {
    if (WHITESPACE.test(q[i])) {
      i++;
      continue;
    }
    KEY.lastIndex = i;
    const key = KEY.exec(q);
    if (key) i = KEY.lastIndex;
    if (q[i] === '"') {
      const open = i++;
      let value = "";
      let closed = false;
      while (i < q.length) {
        const c = q[i++];
        if (c === '"') {
          closed = true;
          break;
        }
        // `\"` and `\\` stand for the character; any other backslash is itself.
        if (c === "\\" && (q[i] === '"' || q[i] === "\\")) value += q[i++];
        else value += c;
      }
      if (!closed) return `unclosed quote in the query at '${q.slice(open)}'`;
      out.push({ key: key?.[1] ?? null, value, quoted: true });
    } else {
      const start = i;
      while (i < q.length && !WHITESPACE.test(q[i])) i++;
      out.push({ key: key?.[1] ?? null, value: q.slice(start, i), quoted: false });
    }
  }
  return out;
}

/**
 * One token as a term, or the reason it is not one.
 * @param {{ key: string | null, value: string, quoted: boolean }} token
 * @returns {Term | string}
 */
function term({ key, value, quoted }) {
  if (key === null) return { kind: "text", value };
  if (!value) return `search term '${key}:' has no value${quoted ? " (an empty quoted value)" : ""}`;
  switch (key) {
    case "is":
      if (STATUSES.includes(value)) return { kind: "is", value };
      return `search term 'is:${value}': unknown status '${value}': expected one of ${STATUSES.join(", ")}`;
    case "level":
      if (LEVELS.includes(value)) return { kind: "level", value };
      return `search term 'level:${value}': unknown level; expected debug, info, warning, error or fatal`;
    case "environment":
    case "release":
      return { kind: key, value };
    default:
      return { kind: "tag", key, value };
  }
}

/**
 * Parses a query into its terms (empty: every issue), or says why the server refuses it
 * (the same text as its 400).
 * @param {string} q
 * @returns {Parsed}
 */
export function parseQuery(q) {
  const chars = [...q].length;
  if (chars > MAX_QUERY_CHARS) {
    return { error: `the query is ${chars} characters long: a query has at most ${MAX_QUERY_CHARS}` };
  }
  const raw = tokens(q);
  if (typeof raw === "string") return { error: raw };
  if (raw.length > MAX_TERMS) {
    return { error: `the query has ${raw.length} terms: a query has at most ${MAX_TERMS}` };
  }
  /** @type {Term[]} */
  const terms = [];
  for (const token of raw) {
    const t = term(token);
    if (typeof t === "string") return { error: t };
    terms.push(t);
  }
  return { terms };
}

/**
 * Whether an issue's own fields satisfy a term; null when only stored events can say
 * (environment, release, tags).
 * @param {Term} t
 * @param {IssueFields} issue
 * @returns {boolean | null}
 */
export function termMatches(t, issue) {
  switch (t.kind) {
    case "is":
      return issue.status === t.value;
    case "level":
      return issue.level === t.value;
    case "text": {
      // A case-insensitive substring of the title or the culprit.
      const needle = t.value.toLowerCase();
      return [issue.title, issue.culprit].some((v) => typeof v === "string" && v.toLowerCase().includes(needle));
    }
    default:
      return null;
  }
}

/**
 * The test the list applies to an issue the stream reports, or null when the query asks
 * about stored events and only the server can answer (the list is read again instead). A
 * query the server refuses matches nothing.
 * @param {string} query
 * @returns {((issue: IssueFields) => boolean) | null}
 */
export function localFilter(query) {
  const parsed = parseQuery(query);
  if ("error" in parsed) return () => false;
  if (parsed.terms.some((t) => termMatches(t, {}) === null)) return null;
  return (issue) => parsed.terms.every((t) => termMatches(t, issue));
}

/**
 * Whether an issue belongs in the list of `query`, judged from its own fields: `true` when
 * every term holds, `false` when some term the page can judge fails (so it does not belong,
 * whatever its events say), `null` when the page's terms hold but others ask about stored
 * events (environment, release, tags: only the server can say). A query the server refuses
 * matches nothing.
 * @param {string} query
 * @returns {(issue: IssueFields) => boolean | null}
 */
export function membership(query) {
  const parsed = parseQuery(query);
  if ("error" in parsed) return () => false;
  const { terms } = parsed;
  return (issue) => {
    let known = true;
    for (const t of terms) {
      const m = termMatches(t, issue);
      if (m === false) return false;
      if (m === null) known = false;
    }
    return known ? true : null;
  };
}

/**
 * Whether `query` is just the unresolved issues (`is:unresolved`, the default): the list
 * is then exactly what the project's unresolved count counts.
 * @param {string} query
 */
export function isUnresolvedOnly(query) {
  const parsed = parseQuery(query);
  return !("error" in parsed) && parsed.terms.length > 0 && parsed.terms.every((t) => t.kind === "is" && t.value === "unresolved");
}

/** How long a regression is marked, as Sentry's Regressed substatus: 7 days. */
export const REGRESSED_MS = 7 * 24 * 60 * 60 * 1000;

/**
 * Whether an issue shows the "regressed" mark: it is unresolved and a new event reopened
 * it (`regressed_at`) less than 7 days before `now` (unix ms).
 * @param {{ status?: string, regressed_at?: string | null }} issue
 * @param {number} now
 */
export function isRegressed(issue, now) {
  if (issue.status !== "unresolved" || !issue.regressed_at) return false;
  const at = Date.parse(issue.regressed_at);
  return Number.isFinite(at) && now - at < REGRESSED_MS;
}

/** The list's orders, as the API names them. */
export const SORTS = /** @type {const} */ (["last_seen", "first_seen", "event_count"]);
/** @typedef {typeof SORTS[number]} Sort */

/**
 * The sort the API knows by this name, or the default (`last_seen`).
 * @param {unknown} name
 * @returns {Sort}
 */
export function sortOf(name) {
  return SORTS.find((s) => s === name) ?? "last_seen";
}

/**
 * The list's order: by `sort`, newest first, ties by id (newest first), as the server orders.
 * @param {Sort} sort
 * @returns {(a: IssueOrder, b: IssueOrder) => number}
 */
export function compareIssues(sort) {
  /** @type {(a: IssueOrder, b: IssueOrder) => number} */
  const by =
    sort === "event_count"
      ? (a, b) => (b.event_count ?? 0) - (a.event_count ?? 0)
      : (a, b) => (b[sort] ?? "").localeCompare(a[sort] ?? "");
  return (a, b) => by(a, b) || b.id - a.id;
}
/** @typedef {{ id: number, event_count?: number, first_seen?: string, last_seen?: string }} IssueOrder */
