// What each feed message does to the page, whether it comes live over the WebSocket or from
// GET /live/recent when the page opens (or the feed reopens).
import { setShotState, shotFor } from "./court.js";
import { board } from "./board.js";
import { epochMs } from "./dom.js";
import { describeFilter } from "./filters.js";
import { logloss } from "./logloss.js";
import { showNotice } from "./notice.js";
import { schedulePanels } from "./panels.js";
import { MAX_SHOTS, remember, state } from "./state.js";

const RECENT_LIMIT = 500;

function onScored(msg, live) {
  remember(msg);
  const known = state.shots.has(msg.shot_id);
  const shot = shotFor(msg);
  if (known) return;
  state.scored += 1;
  if (msg.model_version) state.modelVersion = msg.model_version;
  if (live) {
    const now = epochMs();
    state.arrivals.push(now);
    if (msg.scored_at) {
      state.lags.push(now - msg.scored_at * 1000);
      if (state.lags.length > 200) state.lags.shift();
    }
    if (shot.el) shot.el.setAttribute("data-lag-ms", (now - msg.scored_at * 1000).toFixed(1));
  }
}

const labelledIds = new Set(); // outcomes already counted, so history and feed never count twice

function onOutcome(msg) {
  remember(msg);
  const shot = shotFor(msg);
  setShotState(shot, msg.outcome);
  if (labelledIds.has(msg.shot_id)) return;
  labelledIds.add(msg.shot_id);
  if (labelledIds.size > 4 * MAX_SHOTS) labelledIds.delete(labelledIds.values().next().value);
  state.labelled += 1;
  const others = { ...(msg.p_online_by_learner || {}) };
  // A model in shadow (a challenger before promotion, or the champion a promotion replaced)
  // is drawn beside the champion on the same shots: not served, only measured.
  if (Number.isFinite(msg.p_shadow) && msg.shadow_version) others[`shadow v${msg.shadow_version}`] = msg.p_shadow;
  logloss.add(msg.outcome, msg.p_champion, others);
  board.addLive(msg);
}

// `live`: the message came over the WebSocket now (it counts for the rate and the lag).
export function handle(msg, live) {
  switch (msg.type) {
    case "scored":
      onScored(msg, live);
      break;
    case "outcome":
      onOutcome(msg);
      break;
    case "hello":
      break;
    case "error":
      showNotice(`The feed refused a request: ${msg.msg}`, "warn");
      break;
    case "filter":
      describeFilter(msg.filter);
      break;
    case "missed":
      showNotice(
        `The page fell behind the feed: ${msg.count.toLocaleString()} message${msg.count === 1 ? "" : "s"} ` +
          `dropped (${msg.total.toLocaleString()} in all). The court may lack some shots.`,
        "warn",
      );
      break;
    default:
      return;
  }
  schedulePanels();
}

export async function loadRecent() {
  try {
    const response = await fetch(`/live/recent?limit=${RECENT_LIMIT}`);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const messages = (await response.json()).messages || [];
    const when = (m) => (m.type === "outcome" ? m.labelled_at : m.scored_at) || 0;
    messages.sort((a, b) => when(a) - when(b) || (a.type === "outcome") - (b.type === "outcome"));
    for (const msg of messages) handle(msg, false);
  } catch (err) {
    showNotice(`Could not load recent shots (${err.message}); showing new ones only.`, "warn");
  }
}
