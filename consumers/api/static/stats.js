// The numbers in the header (scored, labelled, shots/s, feed lag, champion) and the count of
// shots on the court.
import { $, epochMs } from "./dom.js";
import { state } from "./state.js";

// True while shots came in the last five seconds: the rate keeps falling to zero when the feed stops.
export function renderStats() {
  const now = epochMs();
  while (state.arrivals.length && state.arrivals[0] < now - 5000) state.arrivals.shift();
  $("stat-scored").textContent = state.scored.toLocaleString();
  $("stat-labelled").textContent = state.labelled.toLocaleString();
  $("stat-rate").textContent = state.arrivals.length ? (state.arrivals.length / 5).toFixed(1) : "–";
  if (state.lags.length) {
    const sorted = [...state.lags].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    $("stat-lag").textContent = median < 1000 ? `${Math.max(0, median).toFixed(0)} ms` : `${(median / 1000).toFixed(1)} s`;
  }
  if (state.modelVersion) $("stat-model").textContent = `v${state.modelVersion}`;
  const total = state.shots.size;
  const shown = $("shots").childElementCount;
  const filtered = $("filter-state").dataset.filter;
  $("filter-state").textContent = filtered
    ? `${shown.toLocaleString()} of ${total.toLocaleString()} shots · ${filtered}`
    : `${total.toLocaleString()} shots on the court`;
  return state.arrivals.length > 0;
}
