// What if: the probability of a chosen player's shot from where the court is clicked, at the
// period, clock and season type chosen beside it (GET /whatif).
import { colourFor } from "./colour.js";
import { $, text } from "./dom.js";
import { refreshOptions } from "./filters.js";
import { state } from "./state.js";

const COURT = { xMin: -250, xMax: 250, yMin: -52, yMax: 418 };

let whatifRequest = 0;

function courtPoint(event) {
  const space = $("court-space");
  const point = $("court").createSVGPoint();
  point.x = event.clientX;
  point.y = event.clientY;
  const local = point.matrixTransform(space.getScreenCTM().inverse());
  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, Math.round(v)));
  return { x: clamp(local.x, COURT.xMin, COURT.xMax), y: clamp(local.y, COURT.yMin, COURT.yMax) };
}

function whatifPlayer() {
  const select = $("whatif-player");
  if (select.value === "") {
    const fallback = state.filter.player_id ?? state.lastPlayer;
    if (fallback == null) return null;
    refreshOptions();
    select.value = String(fallback);
  }
  return select.value === "" ? null : Number(select.value);
}

export async function askWhatIf(event) {
  const { x, y } = courtPoint(event);
  const marker = $("whatif-marker");
  marker.setAttribute("transform", `translate(${x} ${y})`);
  marker.removeAttribute("hidden");
  const result = $("whatif-result");
  const player = whatifPlayer();
  if (player == null) {
    result.dataset.state = "error";
    result.innerHTML = `<span class="hint">No player yet: wait for a shot or pick one above.</span>`;
    return;
  }
  const request = ++whatifRequest;
  result.dataset.state = "loading";
  result.removeAttribute("data-p");
  result.dataset.x = x;
  result.dataset.y = y;
  result.dataset.playerId = player;
  try {
    const response = await fetch(`/whatif?${whatifQuery(player, x, y)}`);
    const body = await response.json().catch(() => ({}));
    if (request !== whatifRequest) return;
    if (!response.ok) throw new Error(problem(body) || `HTTP ${response.status}`);
    showWhatIf(result, body, player, x, y);
  } catch (err) {
    if (request !== whatifRequest) return;
    result.dataset.state = "error";
    result.replaceChildren(text("span", "hint", `No answer for that spot: ${err.message}`));
  }
}

// The moment priced is explicit: the period, the clock left and the season type chosen
// beside the court (a new game: no earlier shot of the player in it).
function whatifQuery(player, x, y) {
  const [minutes, seconds] = $("whatif-clock").value.split(":").map(Number);
  let period = Number($("whatif-period").value);
  const query = new URLSearchParams({
    player_id: String(player),
    x: String(x),
    y: String(y),
    period: String(period),
    minutes_remaining: String(period >= 5 ? Math.min(minutes, 5) : minutes),
    seconds_remaining: String(seconds),
  });
  const season = $("whatif-season").value;
  if (season) query.set("season_type", season);
  return query.toString();
}

// Priced over the player's (or the league's) mix of actions from that zone unless one is given.
function whatifAction(prediction, shot) {
  const mix = prediction.action_mix;
  if (!mix) return shot.action_type || "shot";
  const top = mix.actions[0];
  return `${mix.whose === "player" ? "his" : "the league's"} ${mix.actions.length} usual actions ` +
    `(${top.action_type} ${(top.share * 100).toFixed(0)}%)`;
}

function formatDate(yyyymmdd) {
  const s = String(yyyymmdd);
  return s.length === 8 ? `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6)}` : s;
}

function problem(body) {
  if (!body || !body.detail) return "";
  if (typeof body.detail === "string") return body.detail;
  return body.detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
}

function showWhatIf(result, body, player, x, y) {
  const { prediction, shot, context } = body;
  const p = prediction.probability;
  result.dataset.state = "ok";
  result.dataset.p = String(p);
  result.dataset.x = x;
  result.dataset.y = y;
  result.dataset.playerId = player;
  const name = (state.players.get(player) || {}).name || shot.player_name || `player ${player}`;
  const where = [shot.shot_type && shot.shot_type.slice(0, 3), shot.shot_zone_basic, `${shot.shot_distance} ft`]
    .filter(Boolean)
    .join(" · ");
  const formShots = prediction.form_history ? prediction.form_history.shots : null;
  result.replaceChildren(
    text("span", "big", `${(p * 100).toFixed(1)}%`),
    text("span", "odds", `fair odds ${prediction.fair_odds.toFixed(2)}`),
    text("span", "detail", `${name} · ${where}`),
    text(
      "span",
      "detail muted",
      `${whatifAction(prediction, shot)} at (${x}, ${y})` +
        (formShots != null ? ` · form from ${formShots.toLocaleString()} earlier shot${formShots === 1 ? "" : "s"}` : ""),
    ),
  );
  if (context) {
    const period = context.period <= 4 ? `Q${context.period}` : `OT${context.period - 4}`;
    const line = text(
      "span",
      "detail muted context",
      `${period} · ${context.clock} left · ${context.season_type} · ${context.game}` +
        (context.game_date ? ` · ${formatDate(context.game_date)}` : ""),
    );
    line.dataset.season = context.season_type;
    result.append(line);
  }
  for (const warning of prediction.warnings || []) result.append(text("span", "detail warn", warning));
  const marker = $("whatif-marker");
  marker.style.setProperty("--c", colourFor(p));
}

// Asked again for the same spot when the player or the moment changes, if a spot was clicked.
export function askAgain() {
  const marker = $("whatif-marker");
  if (!marker.hasAttribute("hidden") && $("whatif-result").dataset.x !== undefined) {
    const r = $("whatif-result").dataset;
    askWhatIfAt(Number(r.x), Number(r.y));
  }
}

// Re-ask for the same spot when the player changes: a synthetic event at the marker.
function askWhatIfAt(x, y) {
  const space = $("court-space");
  const point = $("court").createSVGPoint();
  point.x = x;
  point.y = y;
  const screen = point.matrixTransform(space.getScreenCTM());
  askWhatIf({ clientX: screen.x, clientY: screen.y });
}
