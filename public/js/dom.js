/**
 * Tiny DOM helpers. Text is always set with textContent, never parsed as HTML.
 * @module dom
 */

/**
 * Create an element.
 *
 * @param {string} tag tag name.
 * @param {object} [props]
 * @param {string} [props.className] class attribute.
 * @param {string} [props.text] text content (set with textContent).
 * @param {Record<string, string>} [props.attrs] attributes (set with setAttribute).
 * @param {Record<string, string>} [props.dataset] data-* attributes.
 * @param {Array<Node|string>} [children] child nodes; strings become text nodes.
 * @returns {HTMLElement}
 */
export function el(tag, { className, text, attrs = {}, dataset = {} } = {}, children = []) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  for (const [name, value] of Object.entries(dataset)) node.dataset[name] = value;
  for (const child of children) node.append(child);
  return node;
}

/**
 * Show or hide an element with the `hidden` attribute (no inline styles: the CSP forbids them).
 * @param {HTMLElement} node
 * @param {boolean} visible
 */
export function show(node, visible) {
  node.hidden = !visible;
}

/**
 * Put a message in a live region (pass "" to clear it).
 * @param {HTMLElement} region element with role="status" or role="alert".
 * @param {string} message
 * @param {"info"|"error"|"success"} [kind="info"]
 */
export function announce(region, message, kind = "info") {
  region.textContent = message;
  region.dataset.kind = kind;
  show(region, Boolean(message));
}

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * Create an SVG element (attributes with setAttribute, text with textContent).
 * @param {string} tag
 * @param {Record<string, string|number>} [attrs]
 * @param {Array<Node|string>} [children]
 * @returns {SVGElement}
 */
export function svg(tag, attrs = {}, children = []) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  for (const child of children) node.append(child);
  return node;
}
