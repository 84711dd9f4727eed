// The game, team and player filters: their options, built from what the feed has shown, and
// what choosing one does (the court, the feed, the leaderboard and the label follow it).
import { board } from "./board.js";
import { showMatching } from "./court.js";
import { $ } from "./dom.js";
import { sendFilter } from "./feed.js";
import { schedulePanels } from "./panels.js";
import { state } from "./state.js";

function readFilter() {
  const filter = {};
  for (const id of ["filter-game", "filter-team", "filter-player"]) {
    const select = $(id);
    if (select.value !== "") filter[select.dataset.key] = Number(select.value);
  }
  return filter;
}

export function applyFilter() {
  const before = JSON.stringify(state.filter);
  state.filter = readFilter();
  showMatching();
  if (state.filter.player_id !== undefined) $("whatif-player").value = String(state.filter.player_id);
  sendFilter();
  if (JSON.stringify(state.filter) !== before) board.load(); // the board follows every filter
  describeFilter(state.filter);
  schedulePanels();
}

export function describeFilter(filter) {
  const parts = [];
  if (filter && filter.game_id != null) parts.push(gameLabel(Number(filter.game_id)));
  if (filter && filter.team != null) parts.push(state.teams.get(Number(filter.team)) || filter.team);
  if (filter && filter.player_id != null) parts.push((state.players.get(Number(filter.player_id)) || {}).name || filter.player_id);
  $("filter-state").dataset.filter = parts.join(" · ");
}

function gameLabel(id) {
  const game = state.games.get(id);
  if (!game) return `game ${id}`;
  const nick = [...game.teams].map((name) => name.split(" ").pop()).join(" v ");
  const d = String(game.date || "");
  const date = d.length === 8 ? `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6)}` : "";
  return [date, nick || `game ${id}`].filter(Boolean).join(" · ");
}

export function refreshOptions() {
  if (!state.optionsDirty) return;
  const selects = ["filter-game", "filter-team", "filter-player", "whatif-player"].map($);
  // Rebuilding an open select closes it under the user's pointer: wait until it is left.
  if (selects.includes(document.activeElement)) return;
  state.optionsDirty = false;
  const games = [...state.games.entries()]
    .sort((a, b) => (b[1].date || 0) - (a[1].date || 0) || b[0] - a[0])
    .map(([id]) => [id, gameLabel(id)]);
  const teams = [...state.teams.entries()].sort((a, b) => a[1].localeCompare(b[1]));
  const players = [...state.players.entries()]
    .sort((a, b) => a[1].name.localeCompare(b[1].name))
    .map(([id, p]) => [id, p.team ? `${p.name} · ${p.team.split(" ").pop()}` : p.name]);
  fillSelect($("filter-game"), games, "All games");
  fillSelect($("filter-team"), teams, "All teams");
  fillSelect($("filter-player"), players, "All players");
  fillSelect($("whatif-player"), players, "pick a player");
}

function fillSelect(select, entries, blank) {
  const value = select.value;
  const options = [new Option(blank, "")];
  for (const [id, label] of entries) options.push(new Option(label, String(id)));
  select.replaceChildren(...options);
  select.value = value;
}
