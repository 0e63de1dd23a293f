// @ts-check
// One event in full, as a developer debugs it (SPEC §6's issue view): the exception chain
// with stack traces, the message, breadcrumbs, request, user, tags, contexts, extra data
// and the SDK. Plain DOM builders, no dependencies; every value the server sends is put into
// the page as text, never as HTML.
//
// An event is drawn from its `data` (what the SDK sent, whole: a Sentry event or Mesher's
// native JSON); an event stored before events were kept whole has only the listed fields,
// which have the same names. What an SDK sends is free-form: it is read as `any` and every
// field is checked where it is used.

import { h } from "./js/dom.js";
import { present, text, when } from "./js/format.js";

/** @typedef {import("./js/dom.js").Child} Child */

/**
 * @param {unknown} v
 * @returns {v is Record<string, any>}
 */
const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * Sentry sends some lists as `{"values": [...]}`.
 * @param {unknown} v
 * @returns {any[]}
 */
function list(v) {
  if (Array.isArray(v)) return v;
  if (isObject(v) && Array.isArray(v.values)) return v.values;
  return [];
}

/**
 * Key/value pairs from an object or a list of `[key, value]` pairs (tags, headers).
 * @param {unknown} v
 * @returns {[string, unknown][]}
 */
function pairs(v) {
  if (Array.isArray(v)) {
    return v
      .filter((p) => Array.isArray(p) && p.length >= 2)
      .map(([k, val]) => [String(k), val]);
  }
  if (isObject(v)) return Object.entries(v);
  return [];
}

/**
 * A two-column table of key/value pairs; values that are objects are shown as JSON.
 * @param {[string, unknown][]} rows
 * @param {string} testid
 */
function table(rows, testid) {
  const body = h("tbody");
  for (const [k, v] of rows) {
    const value = text(v);
    body.append(
      h(
        "tr",
        { "data-key": k },
        h("th", { scope: "row", text: k }),
        h("td", {}, value.includes("\n") ? h("pre", { text: value }) : h("code", { text: value })),
      ),
    );
  }
  return h("table", { class: "kv", "data-testid": testid }, body);
}

/**
 * @param {string} title
 * @param {string} testid
 * @param {...Child} content
 */
function section(title, testid, ...content) {
  return h("section", { class: "event-section", "data-testid": testid }, h("h3", { text: title }), ...content);
}

// ---------------------------------------------------------------------------------------
// Exceptions and stack traces

/**
 * The exceptions of the chain, innermost cause first as Sentry sends them, each with its
 * frames (oldest call first). A native event has one exception and a top-level stacktrace.
 * @param {any} data
 * @returns {any[]}
 */
export function exceptionsOf(data) {
  const ex = data.exception;
  let values = list(ex);
  if (!values.length && isObject(ex) && (ex.type || ex.value)) values = [ex];
  values = values.filter(isObject).map((e) => ({ ...e, frames: list(e.stacktrace?.frames ?? e.stacktrace) }));
  const top = list(data.stacktrace?.frames ?? data.stacktrace);
  if (top.length) {
    const last = values.at(-1);
    if (last && !last.frames.length) last.frames = top;
    else values.push({ type: "Stack trace", value: "", frames: top });
  }
  return values;
}

/**
 * @param {any} f
 * @returns {(string | Node)[]}
 */
function frameTitle(f) {
  const file = f.filename || f.abs_path || f.module || "<unknown>";
  /** @type {(string | Node)[]} */
  const parts = [h("code", { class: "frame-file", text: file })];
  if (f.function) parts.push(" in ", h("code", { class: "frame-function", text: f.function }));
  if (present(f.lineno)) {
    parts.push(" at line ", h("span", { class: "frame-line", text: present(f.colno) ? `${f.lineno}:${f.colno}` : String(f.lineno) }));
  }
  return parts;
}

/**
 * The source lines that were sent, numbered, the crashing line marked.
 * @param {any} f
 */
function contextLines(f) {
  if (!present(f.context_line) && !list(f.pre_context).length && !list(f.post_context).length) return null;
  const pre = list(f.pre_context);
  const post = list(f.post_context);
  const line = typeof f.lineno === "number" ? f.lineno : null;
  const first = line === null ? null : line - pre.length;
  const ol = h("ol", { class: "context", "data-testid": "context-lines" });
  /** @type {(src: unknown, i: number, crash: boolean) => void} */
  const add = (src, i, crash) => {
    const n = first === null ? "" : String(first + i);
    ol.append(
      h(
        "li",
        { class: crash ? "context-line crash-line" : "context-line", "data-testid": crash ? "crash-line" : null, "data-line": n || null },
        h("span", { class: "line-number", "aria-hidden": "true", text: n }),
        h("code", { text: text(src) }),
        crash ? h("span", { class: "visually-hidden", text: " (the line that raised)" }) : null,
      ),
    );
  };
  pre.forEach((src, i) => add(src, i, false));
  if (present(f.context_line)) add(f.context_line, pre.length, true);
  post.forEach((src, i) => add(src, pre.length + 1 + i, false));
  return ol;
}

/**
 * A mapped frame's minified location, shown on request; or why a frame was not mapped.
 * @param {any} f
 */
function mappingNote(f) {
  if (f.mapped === true && isObject(f.minified)) {
    const m = f.minified;
    const where = [m.abs_path || "<unknown>", m.function ? `in ${m.function}` : "", present(m.lineno) ? `at line ${m.lineno}${present(m.colno) ? `:${m.colno}` : ""}` : ""];
    return h(
      "details",
      { class: "minified-frame", "data-testid": "minified-frame" },
      h("summary", { text: "Minified frame" }),
      h("code", { text: where.filter(Boolean).join(" ") }),
    );
  }
  if (typeof f.error === "string" && f.error) {
    return h("p", { class: "muted frame-unmapped", "data-testid": "frame-unmapped", text: `Not mapped: ${f.error}` });
  }
  return null;
}

/**
 * The frames of `sent` (an exception as `exceptionsOf` reads it) with the server's
 * mapped frames (`shown`, SPEC §10: same frames, same order) in place of the minified
 * ones; what the server does not repeat (local variables) is kept.
 * @param {any} sent
 * @param {any} shown
 * @returns {any}
 */
export function withMapped(sent, shown) {
  if (!isObject(shown) || !Array.isArray(shown.frames) || shown.frames.length !== sent.frames.length) return sent;
  const frames = sent.frames.map((/** @type {any} */ f, /** @type {number} */ i) => {
    const s = shown.frames[i];
    if (!isObject(s) || (s.mapped !== true && !s.error)) return f;
    return s.mapped === true ? { ...s, vars: isObject(f) ? f.vars : undefined } : { ...f, error: s.error };
  });
  return { ...sent, frames };
}

/**
 * The maps an exception's frames were mapped with, each once.
 * @param {any[]} frames
 * @returns {string[]}
 */
export function mapsUsed(frames) {
  return [...new Set(frames.filter((f) => isObject(f) && f.mapped === true && typeof f.map === "string").map((f) => f.map))];
}

/**
 * @param {any} f
 * @param {boolean} open
 */
function frameItem(f, open) {
  const inApp = f.in_app === true;
  const vars = pairs(f.vars);
  const details = h(
    "details",
    { class: inApp ? "frame frame-app" : "frame frame-lib", "data-testid": "frame", "data-in-app": String(inApp), open },
    h(
      "summary",
      {},
      ...frameTitle(f),
      inApp ? h("span", { class: "pill pill-app", text: "in app" }) : null,
      f.mapped === true ? h("span", { class: "pill pill-mapped", "data-testid": "mapped", text: "source-mapped" }) : null,
    ),
  );
  const ctx = contextLines(f);
  if (ctx) details.append(ctx);
  const note = mappingNote(f);
  if (note) details.append(note);
  if (vars.length) details.append(h("p", { class: "vars-title", text: "Local variables" }), table(vars, "frame-vars"));
  if (!ctx && !vars.length && !f.error) details.append(h("p", { class: "muted", text: "No source context was sent for this frame." }));
  return h("li", {}, details);
}

/**
 * Frames most recent call first (where the error was raised at the top, as Sentry shows
 * them); runs of library frames fold into one collapsed group, in-app frames stay apart.
 * @param {any[]} frames
 */
function stackTrace(frames) {
  const ol = h("ol", { class: "frames", "data-testid": "frames" });
  const ordered = [...frames].filter(isObject).reverse();
  let openLeft = 1; // the frame that raised, or the first in-app one, starts open
  /** @type {HTMLOListElement | null} */
  let group = null;
  /** @type {HTMLElement | null} */
  let summary = null;
  for (const f of ordered) {
    if (f.in_app === true) {
      group = null;
      ol.append(frameItem(f, openLeft-- > 0));
      continue;
    }
    if (!group) {
      group = h("ol", { class: "frames" });
      summary = h("summary");
      const box = h("details", { class: "library-frames", "data-testid": "library-frames" }, summary, group);
      ol.append(h("li", {}, box));
    }
    group.append(frameItem(f, false));
    const n = group.children.length;
    if (summary) summary.textContent = `${n} library frame${n === 1 ? "" : "s"}`;
  }
  // Without any in-app frame, the raising frame is worth seeing at once.
  if (!ordered.some((f) => f.in_app === true)) {
    const firstGroup = ol.querySelector(".library-frames");
    if (firstGroup instanceof HTMLDetailsElement) {
      firstGroup.open = true;
      firstGroup.querySelector(".frame")?.setAttribute("open", "");
    }
  }
  return ol;
}

/**
 * @param {any} e
 * @param {number} index
 * @param {number} count
 */
function exceptionBlock(e, index, count) {
  const mechanism = isObject(e.mechanism) ? e.mechanism : null;
  const head = h(
    "div",
    { class: "exception-head" },
    h("code", { class: "exception-type", "data-testid": "exception-type", text: e.type || "Error" }),
    present(e.value) ? h("span", { class: "exception-value", "data-testid": "exception-value", text: text(e.value) }) : null,
  );
  const notes = [];
  if (e.module) notes.push(`module ${e.module}`);
  if (mechanism?.type) notes.push(`mechanism ${mechanism.type}${mechanism.handled === false ? " (unhandled)" : ""}`);
  const block = h(
    "li",
    { class: "exception", "data-testid": "exception", "data-type": e.type || "" },
    head,
    notes.length ? h("p", { class: "muted", text: notes.join(" · ") }) : null,
  );
  const maps = mapsUsed(e.frames);
  if (maps.length) block.append(h("p", { class: "muted source-map-used", "data-testid": "source-map-used", text: `Mapped with the source map ${maps.join(", ")}` }));
  if (e.frames.length) block.append(stackTrace(e.frames));
  else block.append(h("p", { class: "muted", text: "No stack trace was sent." }));
  if (index < count - 1) block.append(h("p", { class: "chain-link", text: "caused by the exception below" }));
  return block;
}

/**
 * The chain, the exception that was raised last (the outermost) first.
 * @param {any[]} values
 */
function exceptions(values) {
  const ol = h("ol", { class: "chain", "data-testid": "exception-chain" });
  const outermostFirst = [...values].reverse();
  outermostFirst.forEach((e, i) => ol.append(exceptionBlock(e, i, outermostFirst.length)));
  const title = values.length > 1 ? `Exceptions (a chain of ${values.length}, the last raised first)` : "Exception";
  return section(title, "event-exceptions", ol);
}

// ---------------------------------------------------------------------------------------
// The other parts

/**
 * @param {any} data
 */
function message(data) {
  const entry = isObject(data.logentry) ? data.logentry : null;
  const formatted = entry?.formatted ?? entry?.message;
  const msg = typeof data.message === "string" ? data.message : (data.message?.formatted ?? data.message?.message);
  const shown = formatted || msg;
  if (!present(shown)) return null;
  const params = entry?.params;
  return section(
    "Message",
    "event-message",
    h("pre", { class: "message", text: text(shown) }),
    params ? table(pairs(Array.isArray(params) ? params.map((p, i) => [String(i), p]) : params), "message-params") : null,
  );
}

/**
 * @param {any} data
 */
function breadcrumbs(data) {
  const crumbs = list(data.breadcrumbs).filter(isObject);
  if (!crumbs.length) return null;
  const ol = h("ol", { class: "crumbs", "data-testid": "breadcrumbs" });
  for (const c of crumbs) {
    const level = String(c.level ?? "info");
    const what = [c.category, c.type && c.type !== "default" ? c.type : null].filter(Boolean).join(" · ");
    const li = h(
      "li",
      { class: `crumb crumb-${level}`, "data-testid": "breadcrumb" },
      h("time", { class: "crumb-time", text: present(c.timestamp) ? when(c.timestamp) : "" }),
      h("span", { class: "crumb-level", text: level }),
      h("span", { class: "crumb-what", text: what || "breadcrumb" }),
      present(c.message) ? h("p", { class: "crumb-message", text: text(c.message) }) : null,
    );
    const extra = pairs(c.data);
    if (extra.length) li.append(table(extra, "breadcrumb-data"));
    ol.append(li);
  }
  return section(`Breadcrumbs (${crumbs.length}, oldest first)`, "event-breadcrumbs", ol);
}

/**
 * @param {any} data
 */
function request(data) {
  const r = data.request;
  if (!isObject(r)) return null;
  const line = h(
    "p",
    { class: "request-line" },
    h("span", { class: "pill", "data-testid": "request-method", text: r.method || "GET" }),
    " ",
    h("code", { "data-testid": "request-url", text: r.url || "" }),
  );
  /** @type {Node[]} */
  const parts = [line];
  let query = r.query_string;
  if (typeof query === "string" && query) {
    query = [...new URLSearchParams(query)];
  }
  const q = pairs(query);
  if (q.length) parts.push(h("h4", { text: "Query" }), table(q, "request-query"));
  const headers = pairs(r.headers);
  if (headers.length) parts.push(h("h4", { text: "Headers" }), table(headers, "request-headers"));
  if (present(r.data)) parts.push(h("h4", { text: "Body" }), h("pre", { text: text(r.data) }));
  const cookies = pairs(r.cookies);
  if (cookies.length) parts.push(h("h4", { text: "Cookies" }), table(cookies, "request-cookies"));
  const env = pairs(r.env);
  if (env.length) parts.push(h("h4", { text: "Environment" }), table(env, "request-env"));
  return section("Request", "event-request", ...parts);
}

/**
 * @param {string} title
 * @param {string} testid
 * @param {unknown} v
 */
function keyValues(title, testid, v) {
  const rows = pairs(v);
  return rows.length ? section(title, testid, table(rows, `${testid}-table`)) : null;
}

/**
 * @param {any} data
 */
function contexts(data) {
  const ctx = pairs(data.contexts).filter(([, v]) => isObject(v));
  if (!ctx.length) return null;
  const grid = h("div", { class: "contexts" });
  for (const [name, v] of ctx) {
    grid.append(
      h(
        "div",
        { class: "context-box", "data-testid": "context", "data-name": name },
        h("h4", { text: name }),
        table(Object.entries(/** @type {object} */ (v)).filter(([k]) => k !== "type"), "context-table"),
      ),
    );
  }
  return section("Contexts", "event-contexts", grid);
}

/**
 * @param {any} data
 */
function modules(data) {
  const rows = pairs(data.modules);
  if (!rows.length) return null;
  return section(
    "Modules",
    "event-modules",
    h("details", {}, h("summary", { text: `${rows.length} packages` }), table(rows, "modules-table")),
  );
}

/**
 * What the event says about where it came from.
 * @param {any} data
 * @param {any} listed
 */
function summary(data, listed) {
  const sdk = isObject(data.sdk) ? data.sdk : listed.sdk;
  /** @type {[string, unknown][]} */
  const all = [
    ["event id", listed.id ?? data.event_id],
    ["level", data.level ?? listed.level],
    ["time", when(data.timestamp ?? listed.timestamp)],
    ["environment", data.environment ?? listed.environment ?? "production"],
    ["release", data.release ?? listed.release],
    ["platform", data.platform],
    ["server", data.server_name],
    ["transaction", data.transaction],
    ["SDK", isObject(sdk) ? [sdk.name, sdk.version].filter(Boolean).join(" ") : null],
    ["fingerprint", Array.isArray(data.fingerprint) ? data.fingerprint.join(" · ") : null],
  ];
  const rows = all.filter(([, v]) => present(v));
  return h("div", { class: "event-summary" }, table(rows, "event-summary"));
}

/**
 * The chain (innermost first) with the server's mapped frames put in: `chain` is the
 * event answer's `exception`, outermost first (SPEC §10).
 * @param {any[]} values
 * @param {unknown} chain
 */
function mapped(values, chain) {
  if (!Array.isArray(chain) || chain.length !== values.length) return values;
  const n = values.length;
  return values.map((v, i) => withMapped(v, chain[n - 1 - i]));
}

/**
 * The whole event: `data` as received (may be null for old events) and the listed event.
 * @param {unknown} data
 * @param {any} listed
 */
export function renderEvent(data, listed) {
  const d = isObject(data) ? data : listed;
  const exc = mapped(exceptionsOf(d), listed?.exception);
  const parts = [
    summary(d, listed),
    exc.length ? exceptions(exc) : null,
    message(d),
    breadcrumbs(d),
    request(d),
    keyValues("Tags", "event-tags", d.tags),
    keyValues("User", "event-user", d.user),
    contexts(d),
    keyValues("Additional data", "event-extra", d.extra),
    modules(d),
  ];
  if (!isObject(data)) {
    parts.push(h("p", { class: "muted", text: "This event was stored before Mesher kept events whole: only its summary fields are shown." }));
  }
  return h("div", { class: "event-body", "data-testid": "event-body" }, ...parts);
}
