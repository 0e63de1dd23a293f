// @ts-check
// The page's two notices: an error (a failed request, the server's `error`) and the
// `lagged` warning (the stream dropped messages because this view fell behind).

import { byId } from "./dom.js";
import { plural } from "./format.js";

const ui = {
  lagged: byId("lagged-notice", HTMLDivElement),
  laggedText: byId("lagged-text", HTMLParagraphElement),
  laggedDismiss: byId("lagged-dismiss", HTMLButtonElement),
  error: byId("error-notice", HTMLDivElement),
  errorText: byId("error-text", HTMLParagraphElement),
  errorDismiss: byId("error-dismiss", HTMLButtonElement),
};

/** Messages dropped since the warning was last dismissed. */
let laggedTotal = 0;

/** Wires the Dismiss buttons. */
export function initNotices() {
  ui.laggedDismiss.addEventListener("click", () => {
    ui.lagged.hidden = true;
    laggedTotal = 0;
  });
  ui.errorDismiss.addEventListener("click", () => {
    ui.error.hidden = true;
  });
}

/**
 * Shows an error.
 * @param {string} message
 */
export function showError(message) {
  ui.errorText.textContent = message;
  ui.error.hidden = false;
}

/**
 * Shows that `dropped` more messages were dropped.
 * @param {unknown} dropped
 */
export function showLagged(dropped) {
  laggedTotal += Number(dropped) || 0;
  ui.laggedText.textContent = `${plural(laggedTotal, "message was", "messages were")} dropped because this view fell behind. The issue list has been reloaded; the feed may miss some events.`;
  ui.lagged.hidden = false;
}

/** Hides both (a new connection). */
export function resetNotices() {
  laggedTotal = 0;
  ui.lagged.hidden = true;
  ui.error.hidden = true;
}
