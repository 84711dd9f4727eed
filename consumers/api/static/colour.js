// The probability colour scale of the shots, and its legend under the court.
import { $, svg } from "./dom.js";

// RdYlBu, reversed: cold blue for long shots, red for near-certain ones. Clamped outside.
const STOPS = [
  [0.2, [44, 123, 182]],
  [0.35, [171, 217, 233]],
  [0.45, [255, 255, 191]],
  [0.55, [253, 174, 97]],
  [0.7, [215, 25, 28]],
];

export function colourFor(p) {
  if (!(p >= STOPS[0][0])) return rgb(STOPS[0][1]);
  for (let i = 1; i < STOPS.length; i++) {
    const [p1, c1] = STOPS[i];
    if (p <= p1) {
      const [p0, c0] = STOPS[i - 1];
      const t = (p - p0) / (p1 - p0);
      return rgb(c0.map((v, k) => v + t * (c1[k] - v)));
    }
  }
  return rgb(STOPS[STOPS.length - 1][1]);
}
const rgb = (c) => `rgb(${c.map((v) => Math.round(v)).join(",")})`;

export function drawLegend() {
  const bar = $("legend-bar");
  const lo = STOPS[0][0];
  const span = STOPS[STOPS.length - 1][0] - lo;
  const gradient = svg("linearGradient", { id: "p-gradient", x1: 0, x2: 1, y1: 0, y2: 0 });
  for (const [p, c] of STOPS) {
    gradient.appendChild(svg("stop", { offset: (p - lo) / span, "stop-color": rgb(c) }));
  }
  const defs = svg("defs", {});
  defs.appendChild(gradient);
  bar.appendChild(defs);
  bar.appendChild(svg("rect", { x: 10, y: 2, width: 280, height: 12, rx: 3, fill: "url(#p-gradient)" }));
  for (let p = 0.2; p <= 0.7001; p += 0.1) {
    const x = 10 + ((p - lo) / span) * 280;
    const edge = p < 0.21 ? "≤" : p > 0.69 ? "≥" : "";
    bar.appendChild(svg("line", { x1: x, x2: x, y1: 14, y2: 18, class: "tick" }));
    const label = svg("text", { x, y: 28, "text-anchor": "middle", class: "tick-label" });
    label.textContent = `${edge}${Math.round(p * 100)}%`;
    bar.appendChild(label);
  }
}
