// @ts-check
// The live stream: one WebSocket on /stream/projects/<id> (docs/PROTOCOL.md). The token
// goes as the socket's first message (`{"type":"auth"}`), never in its URL. After a drop
// the stream reconnects with `?since=<last seq>`, so the server replays what it missed;
// events are keyed by seq (`accept`), so nothing counts twice. What the messages mean for
// the page is the handlers' business (dashboard.js).

import { api, currentProject, currentToken, messageOf, nextGeneration, currentGeneration, statusOf } from "./api.js";
import { byId } from "./dom.js";

/** @typedef {import("./filters.js").Filters} Filters */
/**
 * @typedef {{
 *   filters: () => Filters,
 *   subscribed: (first: boolean, seq: number, filters: Filters) => void,
 *   message: (msg: any) => void,
 *   closed: () => void,
 *   failed: (reason: string) => void,
 * }} Handlers
 */
/** @typedef {"idle" | "connecting" | "live" | "reconnecting" | "error"} Status */

const ui = {
  status: byId("connection-status", HTMLSpanElement),
  statusDetail: byId("connection-detail", HTMLSpanElement),
};

/** @type {Handlers | null} */
let handlers = null;
/** @type {WebSocket | null} */
let ws = null;
let live = false;
/** @type {string | null} */
let connId = null;
let retries = 0;
/** @type {ReturnType<typeof setTimeout> | null} */
let retryTimer = null;
/** The highest seq this view has accounted for; null before the first `subscribed`. */
/** @type {number | null} */
let lastSeq = null;
/** The `seq` of the latest `subscribed`: events up to it are already in the issue list. */
let replayTarget = -1;
/** Seqs shown or counted (bounded). */
const seen = new Set();

/**
 * Sets what the stream reports to.
 * @param {Handlers} h
 */
export function initConnection(h) {
  handlers = h;
  addEventListener("online", () => {
    if (retryTimer) openStream();
  });
}

/**
 * The connection status line.
 * @param {Status} kind
 * @param {string} [detail]
 */
export function setStatus(kind, detail = "") {
  const text = {
    idle: "not connected",
    connecting: "connecting",
    live: "live",
    reconnecting: "reconnecting",
    error: "not connected",
  }[kind];
  ui.status.dataset.state = kind;
  ui.status.textContent = text;
  ui.statusDetail.textContent = detail;
  document.body.dataset.connection = kind;
}

/** Whether the stream is subscribed and open. */
export function isOpen() {
  return live && ws !== null && ws.readyState === WebSocket.OPEN;
}

/** Whether a socket is open or opening (none while a reconnect waits). */
export function hasSocket() {
  return ws !== null;
}

/** This connection's id (`X-Mesher-Origin` of the changes it makes), while live. */
export function connectionId() {
  return connId;
}

/**
 * Sends a message on the open stream.
 * @param {object} msg
 */
export function send(msg) {
  if (!isOpen() || !ws) return false;
  ws.send(JSON.stringify(msg));
  return true;
}

/**
 * Accounts for event `seq`: false when it was already (a replay overlapping what was
 * shown). Replayed events move the mark as they come; the `pong` after a replay settles it.
 * @param {unknown} seq
 * @returns {seq is number}
 */
export function accept(seq) {
  if (typeof seq !== "number" || seen.has(seq)) return false;
  seen.add(seq);
  if (seen.size > 20_000) {
    // Sets iterate in insertion order: forget the oldest.
    let drop = seen.size - 10_000;
    for (const s of seen) {
      if (drop-- <= 0) break;
      seen.delete(s);
    }
  }
  if (lastSeq === null || seq > lastSeq) lastSeq = Math.max(lastSeq ?? 0, seq);
  return true;
}

/**
 * Whether event `seq` is newer than the issue list's snapshot (so it counts there).
 * @param {number} seq
 */
export function afterSnapshot(seq) {
  return seq > replayTarget;
}

function streamUrl() {
  const url = new URL(`/stream/projects/${encodeURIComponent(currentProject() ?? "")}`, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.hash = "";
  url.search = "";
  // The token is the first message, never in the URL (which proxies log).
  const f = handlers?.filters() ?? {};
  for (const key of /** @type {const} */ (["level", "min_level", "environment"])) {
    const v = f[key];
    if (v) url.searchParams.set(key, String(v));
  }
  if (lastSeq !== null) url.searchParams.set("since", String(lastSeq));
  return url.href;
}

/** Opens the stream (again, after a drop: from the last seq seen). */
export function openStream() {
  if (retryTimer) clearTimeout(retryTimer);
  retryTimer = null;
  const gen = nextGeneration();
  const first = lastSeq === null && retries === 0;
  setStatus(first ? "connecting" : "reconnecting", retries ? `attempt ${retries + 1}` : "");
  let subscribed = false;
  /** @type {WebSocket} */
  let socket;
  try {
    socket = new WebSocket(streamUrl());
  } catch (err) {
    handlers?.failed(`cannot open the stream: ${messageOf(err)}`);
    return;
  }
  ws = socket;
  const token = currentToken();
  socket.addEventListener("open", () => {
    // Without a token the session cookie came with the upgrade: nothing to send.
    if (gen === currentGeneration() && token) socket.send(JSON.stringify({ type: "auth", token }));
  });
  socket.addEventListener("message", (m) => {
    if (gen !== currentGeneration()) return;
    let msg;
    try {
      msg = JSON.parse(m.data);
    } catch {
      return;
    }
    if (msg?.type === "subscribed") subscribed = true;
    onMessage(msg);
  });
  socket.addEventListener("close", () => {
    if (gen !== currentGeneration()) return;
    ws = null;
    live = false;
    connId = null;
    handlers?.closed();
    if (subscribed) retry();
    else checkThenRetry();
  });
}

/** @param {any} msg */
function onMessage(msg) {
  switch (msg?.type) {
    case "subscribed": {
      const first = lastSeq === null;
      live = true;
      connId = msg.conn_id;
      retries = 0;
      replayTarget = typeof msg.seq === "number" ? msg.seq : 0;
      setStatus("live");
      if (first) lastSeq = replayTarget;
      // Replayed events come first; the answer to this ping marks their end.
      else ws?.send(JSON.stringify({ type: "ping" }));
      handlers?.subscribed(first, replayTarget, msg.filters ?? {});
      break;
    }
    case "pong":
      lastSeq = Math.max(lastSeq ?? 0, replayTarget);
      break;
    default:
      handlers?.message(msg);
  }
}

function retry() {
  const delay = Math.min(15_000, 500 * 2 ** retries) * (0.75 + Math.random() * 0.5);
  retries++;
  setStatus("reconnecting", `retrying in ${Math.ceil(delay / 1000)} s`);
  if (retryTimer) clearTimeout(retryTimer);
  retryTimer = setTimeout(openStream, delay);
}

/** The stream closed before it said `subscribed`: find out whether retrying can help. */
async function checkThenRetry() {
  const gen = currentGeneration();
  try {
    await api(`/api/v1/projects/${encodeURIComponent(currentProject() ?? "")}/issues?limit=1`);
  } catch (err) {
    if (gen !== currentGeneration()) return;
    const status = statusOf(err);
    if (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429) {
      const refused = currentToken() ? "the token was refused" : "access was refused";
      handlers?.failed(status === 401 || status === 403 ? `${refused} (${messageOf(err)})` : messageOf(err));
      return;
    }
  }
  if (gen === currentGeneration()) retry();
}

/** Closes the stream and stops retrying; answers already on their way are dropped. */
export function stopStream() {
  nextGeneration();
  if (retryTimer) clearTimeout(retryTimer);
  retryTimer = null;
  const socket = ws;
  if (socket && socket.readyState === WebSocket.CONNECTING) {
    // Closing a socket that is still connecting makes the browser log an error.
    socket.addEventListener("open", () => socket.close(1000, "closed by the user"));
  } else if (socket && socket.readyState === WebSocket.OPEN) {
    socket.close(1000, "closed by the user");
  }
  ws = null;
  live = false;
  connId = null;
}

/** Forgets what was seen (another project, or the same one anew). */
export function resetStream() {
  lastSeq = null;
  replayTarget = -1;
  retries = 0;
  seen.clear();
}
