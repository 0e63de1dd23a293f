// @ts-check
// DOM builders and look-ups. Every value goes into the page as text or an attribute, never
// as HTML.

/** @typedef {Record<string, string | number | boolean | null | undefined>} Attrs */
/** @typedef {Node | string | null | undefined | false} Child */

/**
 * An element with attributes (`class`, `text`, anything else as an attribute; null,
 * undefined and false leave it off) and children (null, undefined and false are skipped).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attrs} [attrs]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = String(v);
    else if (k === "text") node.textContent = String(v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) node.append(c);
  return node;
}

/**
 * An SVG element with attributes.
 * @param {string} tag
 * @param {Record<string, string | number>} [attrs]
 * @returns {SVGElement}
 */
export function svg(tag, attrs = {}) {
  const node = /** @type {SVGElement} */ (document.createElementNS("http://www.w3.org/2000/svg", tag));
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

/**
 * The page's element with this id, of the type the module expects (the page and the
 * modules are out of step otherwise: better a clear error at load than a wrong page).
 * @template {HTMLElement} T
 * @param {string} id
 * @param {{ new (): T }} type
 * @returns {T}
 */
export function byId(id, type) {
  const el = document.getElementById(id);
  if (!(el instanceof type)) throw new Error(`the page has no ${type.name} #${id}`);
  return el;
}

/**
 * Makes `parent`'s children the elements of `items`, in that order: each item's element is
 * kept in `shown` by its key and made once (`make`), then updated in place (`update`);
 * elements of keys no longer in `items` are removed. Moving is left to elements out of
 * place, so a row that stays keeps its focus and its open details.
 * @template T, K, R
 * @param {Element} parent
 * @param {Map<K, R>} shown
 * @param {T[]} items
 * @param {{ key: (item: T) => K, make: (item: T) => R, element: (row: R) => Element,
 *   update?: (row: R, item: T) => void }} how
 */
export function reconcile(parent, shown, items, { key, make, element, update }) {
  const wanted = new Set(items.map(key));
  for (const [k, row] of shown) {
    if (!wanted.has(k)) {
      element(row).remove();
      shown.delete(k);
    }
  }
  /** @type {Element | null} */
  let prev = null;
  for (const item of items) {
    const k = key(item);
    let row = shown.get(k);
    if (row === undefined) {
      row = make(item);
      shown.set(k, row);
    }
    update?.(row, item);
    const el = element(row);
    /** @type {ChildNode | null} */
    const next = prev ? prev.nextSibling : parent.firstChild;
    if (el !== next) parent.insertBefore(el, next);
    prev = el;
  }
}
