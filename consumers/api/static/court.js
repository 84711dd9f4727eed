// The shots on the court: one dot per shot, coloured by its probability and marked made or
// missed when its outcome comes; the tooltip of the shot under the pointer.
import { colourFor } from "./colour.js";
import { $, epochMs, svg, text } from "./dom.js";
import { MAX_SHOTS, matches, state } from "./state.js";

export function shotFor(msg) {
  let shot = state.shots.get(msg.shot_id);
  if (shot) {
    // Fill in what an earlier, thinner message lacked; never move a labelled shot back.
    for (const key of ["game_date", "action_type", "shot_type", "period", "minutes_remaining", "seconds_remaining", "scored_at"]) {
      if (msg[key] != null && shot[key] == null) shot[key] = msg[key];
    }
    return shot;
  }
  shot = {
    id: msg.shot_id,
    game_id: msg.game_id,
    game_date: msg.game_date,
    player_id: msg.player_id,
    player_name: msg.player_name,
    team_id: msg.team_id,
    team_name: msg.team_name,
    x: msg.x,
    y: msg.y,
    p: msg.p_champion,
    shot_value: msg.shot_value,
    shot_type: msg.shot_type,
    action_type: msg.action_type,
    period: msg.period,
    minutes_remaining: msg.minutes_remaining,
    seconds_remaining: msg.seconds_remaining,
    scored_at: msg.scored_at,
    state: "scored",
    el: null,
  };
  state.shots.set(shot.id, shot);
  if (state.shots.size > MAX_SHOTS) {
    const oldest = state.shots.values().next().value;
    state.shots.delete(oldest.id);
    if (oldest.el) oldest.el.remove();
  }
  if (Number.isFinite(shot.x) && Number.isFinite(shot.y)) {
    const colour = colourFor(shot.p);
    shot.el = svg("circle", {
      cx: shot.x,
      cy: shot.y,
      r: 5,
      fill: colour,
      stroke: colour,
      class: "shot scored fresh",
      "data-shot-id": shot.id,
      "data-p": shot.p,
      "data-state": "scored",
      "data-drawn-at": "",
    });
    if (matches(shot)) $("shots").appendChild(shot.el);
    shot.el.setAttribute("data-drawn-at", epochMs().toFixed(1));
    setTimeout(() => shot.el && shot.el.classList.remove("fresh"), 1000);
  }
  return shot;
}

export function setShotState(shot, outcome) {
  shot.state = outcome ? "made" : "missed";
  if (!shot.el) return;
  shot.el.setAttribute("class", `shot ${shot.state}`);
  shot.el.setAttribute("data-state", shot.state);
}

// Only the shots the filter keeps stay on the court.
export function showMatching() {
  const layer = $("shots");
  const keep = document.createDocumentFragment();
  for (const shot of state.shots.values()) {
    if (shot.el && matches(shot)) keep.appendChild(shot.el);
  }
  layer.replaceChildren(keep);
}

export function showTooltip(event) {
  const target = event.target;
  const id = target.dataset && target.dataset.shotId;
  const tip = $("tooltip");
  if (!id) {
    tip.hidden = true;
    return;
  }
  const shot = state.shots.get(id);
  if (!shot) return;
  const clock =
    shot.period != null ? `Q${shot.period} ${shot.minutes_remaining}:${String(shot.seconds_remaining).padStart(2, "0")}` : "";
  tip.replaceChildren(
    text("strong", "", shot.player_name || `player ${shot.player_id}`),
    text("span", "", [shot.team_name, clock].filter(Boolean).join(" · ")),
    text("span", "", [shot.action_type, shot.shot_type && shot.shot_type.slice(0, 3)].filter(Boolean).join(" · ")),
    text("span", `tip-p ${shot.state}`, `P(made) ${(shot.p * 100).toFixed(1)}% · ${shot.state === "scored" ? "waiting" : shot.state}`),
  );
  const box = $("court").parentElement.getBoundingClientRect();
  tip.hidden = false;
  // Beside the pointer, on whichever side keeps it inside the court.
  const left = event.clientX - box.left + 14;
  const top = event.clientY - box.top + 14;
  tip.style.left = `${left + tip.offsetWidth > box.width ? left - tip.offsetWidth - 28 : left}px`;
  tip.style.top = `${top + tip.offsetHeight > box.height ? top - tip.offsetHeight - 28 : top}px`;
}
