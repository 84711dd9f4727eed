// DOM helpers every part of the page uses: an element by id, new SVG and text elements, and
// the clock shots are timed with.

const SVG_NS = "http://www.w3.org/2000/svg";

export const $ = (id) => document.getElementById(id);

// Epoch milliseconds with sub-millisecond precision, comparable with the server's scored_at.
export const epochMs = () => performance.timeOrigin + performance.now();

export function svg(tag, attrs) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

export function text(tag, className, content) {
  const el = document.createElement(tag);
  el.className = className;
  el.textContent = content;
  return el;
}
