// @ts-check
// Rendering at most once per frame: a module asks for its render function to run, and
// every one asked for runs once in the next animation frame.

/** @type {Set<() => void>} */
const due = new Set();
let frame = 0;

/**
 * Runs `render` in the next animation frame (once, however often it is asked for).
 * @param {() => void} render
 */
export function schedule(render) {
  due.add(render);
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    const now = [...due];
    due.clear();
    for (const r of now) r();
  });
}
