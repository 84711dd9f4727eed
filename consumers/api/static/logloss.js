// The rolling log loss of the champion, each online learner and a model in shadow, over the
// last LOGLOSS_WINDOW labelled shots, drawn as a chart against a coin flip.
import { $, svg } from "./dom.js";
import { state } from "./state.js";

const LOGLOSS_WINDOW = 500; // outcomes in the rolling log loss
const LOGLOSS_MIN = 50; // fewer outcomes than this give a line too noisy to read
const HISTORY_POINTS = 600; // points per chart line
const SERIES_COLOURS = ["#38bdf8", "#c084fc", "#34d399", "#f472b6", "#fbbf24", "#fb923c"];
const COIN_FLIP = Math.log(2);

export const logloss = {
  window: [], // {name: loss} per outcome
  sums: new Map(),
  counts: new Map(),
  history: new Map(), // name -> [[n, rolling]]
  n: 0,
  dirty: false,

  add(outcome, pChampion, byLearner) {
    const losses = {};
    if (Number.isFinite(pChampion)) losses.champion = loss(outcome, pChampion);
    for (const [name, p] of Object.entries(byLearner)) {
      if (Number.isFinite(p)) losses[name] = loss(outcome, p);
    }
    this.window.push(losses);
    for (const [name, value] of Object.entries(losses)) {
      this.sums.set(name, (this.sums.get(name) || 0) + value);
      this.counts.set(name, (this.counts.get(name) || 0) + 1);
    }
    if (this.window.length > LOGLOSS_WINDOW) {
      for (const [name, value] of Object.entries(this.window.shift())) {
        this.sums.set(name, this.sums.get(name) - value);
        this.counts.set(name, this.counts.get(name) - 1);
      }
    }
    this.n += 1;
    for (const [name, count] of this.counts) {
      if (count < LOGLOSS_MIN) continue;
      if (!this.history.has(name)) this.history.set(name, []);
      const line = this.history.get(name);
      line.push([this.n, this.sums.get(name) / count]);
      if (line.length > HISTORY_POINTS) line.shift();
    }
    this.dirty = true;
  },

  render() {
    if (!this.dirty) return;
    this.dirty = false;
    const chart = $("logloss");
    const W = 560, H = 210, L = 42, R = 10, T = 10, B = 22;
    const names = [...this.history.keys()].sort((a, b) => (a === "champion" ? -1 : b === "champion" ? 1 : a.localeCompare(b)));
    const all = names.flatMap((name) => this.history.get(name));
    const nodes = [];
    if (!all.length) {
      const msg = svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" });
      msg.textContent = `waiting for ${LOGLOSS_MIN} labelled shots…`;
      chart.replaceChildren(msg);
      $("logloss-legend").replaceChildren();
      return;
    }
    let lo = Math.min(COIN_FLIP, ...all.map((p) => p[1]));
    let hi = Math.max(COIN_FLIP, ...all.map((p) => p[1]));
    const pad = Math.max(0.005, (hi - lo) * 0.12);
    lo -= pad;
    hi += pad;
    const x0 = Math.min(...all.map((p) => p[0]));
    const x1 = Math.max(x0 + 1, ...all.map((p) => p[0]));
    const sx = (n) => L + ((n - x0) / (x1 - x0)) * (W - L - R);
    const sy = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
    for (const v of niceTicks(lo, hi, 5)) {
      nodes.push(svg("line", { x1: L, x2: W - R, y1: sy(v), y2: sy(v), class: "grid" }));
      const label = svg("text", { x: L - 6, y: sy(v) + 4, "text-anchor": "end", class: "axis" });
      label.textContent = v.toFixed(3);
      nodes.push(label);
    }
    nodes.push(svg("line", { x1: L, x2: W - R, y1: sy(COIN_FLIP), y2: sy(COIN_FLIP), class: "coin" }));
    const xlabel = svg("text", { x: W - R, y: H - 4, "text-anchor": "end", class: "axis" });
    xlabel.textContent = `labelled shot #${x1.toLocaleString()}`;
    nodes.push(xlabel);
    const xstart = svg("text", { x: L, y: H - 4, class: "axis" });
    xstart.textContent = `#${x0.toLocaleString()}`;
    nodes.push(xstart);
    const legend = [];
    names.forEach((name, i) => {
      const colour = name === "champion" ? "#f8fafc" : SERIES_COLOURS[(i - (names.includes("champion") ? 1 : 0)) % SERIES_COLOURS.length];
      const line = this.history.get(name);
      const points = line.map(([n, v]) => `${sx(n).toFixed(1)},${sy(v).toFixed(1)}`).join(" ");
      nodes.push(svg("polyline", { points, stroke: colour, class: `series${name === "champion" ? " champion" : ""}`, "data-model": name }));
      const item = document.createElement("li");
      item.dataset.model = name;
      const last = line[line.length - 1][1];
      const label = name === "champion" && state.modelVersion ? `champion v${state.modelVersion}` : name;
      item.innerHTML = `<span class="swatch" style="background:${colour}"></span><span class="name"></span><span class="value">${last.toFixed(4)}</span>`;
      item.querySelector(".name").textContent = label;
      legend.push(item);
    });
    const coin = document.createElement("li");
    coin.className = "reference";
    coin.innerHTML = `<span class="swatch dashed"></span><span class="name">coin flip</span><span class="value">${COIN_FLIP.toFixed(4)}</span>`;
    chart.replaceChildren(...nodes);
    $("logloss-legend").replaceChildren(...legend, coin);
    $("logloss-sub").textContent = `last ${Math.min(this.window.length, LOGLOSS_WINDOW)} labelled shots · lower is better`;
  },
};

function loss(outcome, p) {
  const q = Math.min(Math.max(p, 1e-6), 1 - 1e-6);
  return outcome ? -Math.log(q) : -Math.log(1 - q);
}

function niceTicks(lo, hi, count) {
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) ticks.push(v);
  return ticks;
}
