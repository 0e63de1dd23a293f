// @ts-check
// Copying a text to the clipboard, with a visible confirmation beside the button. Where
// the clipboard API is missing (a page served over plain http from another host is not a
// secure context), the text is selected so that the person can copy it themselves.

/** How long "Copied" stays. */
const SHOWN_MS = 4_000;
/** @type {WeakMap<HTMLElement, number>} */
const timers = new WeakMap();

/**
 * Copies `text`; says so in `status` (or how to copy by hand), and selects `source`'s text
 * when the clipboard cannot be written.
 * @param {string} text
 * @param {HTMLElement} source the element that shows the text
 * @param {HTMLElement} status a `role="status"` element beside the button
 */
export async function copyText(text, source, status) {
  clearTimeout(timers.get(status));
  let copied = false;
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      copied = true;
    }
  } catch {
    copied = false;
  }
  if (!copied) {
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = getSelection();
    selection?.removeAllRanges();
    selection?.addRange(range);
  }
  status.textContent = copied ? "Copied" : "Selected: press Ctrl+C (⌘C) to copy";
  status.dataset.copied = copied ? "true" : "false";
  timers.set(
    status,
    window.setTimeout(() => {
      status.textContent = "";
      delete status.dataset.copied;
    }, SHOWN_MS),
  );
}
