// What the page knows: the shots it drew, the filter it shows, and the games, teams and players
// it has seen (for the filters' options and the labels).

export const MAX_SHOTS = 2000; // drawn shots kept; older ones leave the court so a long replay stays fast

export const state = {
  shots: new Map(), // shot_id -> shot, oldest first
  filter: {}, // {game_id, team, player_id}: what the server is asked to send and the court shows
  games: new Map(), // game_id -> {date, teams: Set of names}
  teams: new Map(), // team_id -> name
  players: new Map(), // player_id -> {name, team}
  optionsDirty: false,
  scored: 0,
  labelled: 0,
  lags: [], // ms from scored_at to drawn, live shots only
  arrivals: [], // epoch ms of recent scored messages, for the rate
  modelVersion: null,
  lastPlayer: null,
};

export function matches(shot) {
  const f = state.filter;
  return (
    (f.game_id === undefined || shot.game_id === f.game_id) &&
    (f.team === undefined || shot.team_id === f.team) &&
    (f.player_id === undefined || shot.player_id === f.player_id)
  );
}

export function remember(msg) {
  if (msg.game_id != null) {
    let game = state.games.get(msg.game_id);
    if (!game) {
      game = { date: msg.game_date, teams: new Set() };
      state.games.set(msg.game_id, game);
      state.optionsDirty = true;
    }
    if (msg.game_date && !game.date) game.date = msg.game_date;
    if (msg.team_name && !game.teams.has(msg.team_name)) {
      game.teams.add(msg.team_name);
      state.optionsDirty = true;
    }
  }
  if (msg.team_id && !state.teams.has(msg.team_id)) {
    state.teams.set(msg.team_id, msg.team_name || `team ${msg.team_id}`);
    state.optionsDirty = true;
  }
  if (msg.player_id && !state.players.has(msg.player_id)) {
    state.players.set(msg.player_id, { name: msg.player_name || `player ${msg.player_id}`, team: msg.team_name || "" });
    state.optionsDirty = true;
  }
  if (msg.player_id) state.lastPlayer = msg.player_id;
}
