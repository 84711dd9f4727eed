// The points-above-expectation leaderboard: its base from GET /leaderboard with the page's
// filters, the outcomes labelled since added live, and the ranking redone here.
import { fillBoard } from "./board_table.js";
import { $ } from "./dom.js";
import { showNotice } from "./notice.js";
import { schedulePanels } from "./panels.js";
import { MAX_SHOTS, matches, state } from "./state.js";

const BOARD_ROWS = { player: 8, team: 5 };
const BOARD_MIN_SHOTS = 20; // the API's default min_shots
const BOARD_MIN_SHOTS_GAME = 5; // one game gives a player a dozen shots, not twenty
const BOARD_PRIOR_SHOTS = 100; // the API's default prior_shots, until its answer says

// Rows rank by points above expectation per shot, shrunk toward the league (0) by the API's
// prior: (points - expected) / (attempts + prior). The base comes from GET /leaderboard with
// the page's filters; outcomes labelled after it are added live, so the ranking is redone here.
export const board = {
  base: { player: new Map(), team: new Map() }, // from GET /leaderboard
  live: { player: new Map(), team: new Map() }, // outcomes labelled after that
  loadedAt: Infinity, // epoch seconds; outcomes labelled before it are in the base already
  counted: new Set(),
  seen: [], // recent outcomes, replayed onto the base once it arrives
  prior: BOARD_PRIOR_SHOTS, // replaced by the prior the API used
  order: "best",

  dirty: true,
  request: 0,

  minShots() {
    return state.filter.game_id !== undefined ? BOARD_MIN_SHOTS_GAME : BOARD_MIN_SHOTS;
  },

  async load() {
    const request = ++this.request;
    const since = Date.now() / 1000;
    const filters = boardFilters(state.filter);
    try {
      const [players, teams] = await Promise.all([fetchBoard("player", filters), fetchBoard("team", filters)]);
      if (request !== this.request) return;
      this.base.player = players.rows;
      this.base.team = teams.rows;
      if (Number.isFinite(players.prior)) this.prior = players.prior;
    } catch (err) {
      if (request !== this.request) return;
      this.base.player = new Map();
      this.base.team = new Map();
      showNotice(`Could not load the leaderboard (${err.message}); it counts live shots only.`, "warn");
    }
    this.live = { player: new Map(), team: new Map() };
    this.counted.clear();
    this.loadedAt = since;
    // Outcomes that came in while the request was out count too, if labelled after it left.
    for (const msg of this.seen) this.count(msg);
    this.dirty = true;
    schedulePanels();
  },

  addLive(msg) {
    this.seen.push(msg);
    if (this.seen.length > 2 * MAX_SHOTS) this.seen.shift();
    this.count(msg);
  },

  count(msg) {
    if (!(msg.labelled_at > this.loadedAt) || this.counted.has(msg.shot_id)) return;
    if (!matches(msg)) return; // the board follows every filter of the court
    if (!Number.isFinite(msg.p_champion) || !msg.shot_value) return;
    this.counted.add(msg.shot_id);
    const shot = { made: msg.outcome ? 1 : 0, points: msg.outcome ? msg.shot_value : 0, expected: msg.p_champion * msg.shot_value };
    bump(this.live.player, msg.player_id, msg.player_name, msg.team_name, shot);
    bump(this.live.team, msg.team_id, msg.team_name, msg.team_name, shot);
    this.dirty = true;
  },

  setOrder(order) {
    this.order = order;
    for (const button of document.querySelectorAll("#board-order button")) {
      button.setAttribute("aria-pressed", String(button.dataset.order === order));
    }
    this.dirty = true;
    schedulePanels();
  },

  render() {
    if (!this.dirty) return;
    this.dirty = false;
    const min = this.minShots();
    $("board-sub").textContent =
      `per 100 FGA, shrunk toward 0 by ${this.prior.toLocaleString()} shots · ${min}+ FGA · ` +
      (this.order === "best" ? "best first" : "worst first");
    for (const by of ["player", "team"]) {
      const rows = ranked(merged(this.base[by], this.live[by]), this.prior, min, this.order);
      fillBoard($(`board-${by}`), rows.slice(0, BOARD_ROWS[by]), by === "player", min);
    }
  },
};

function boardFilters(filter) {
  const params = new URLSearchParams();
  if (filter.game_id !== undefined) params.set("game_id", filter.game_id);
  if (filter.team !== undefined) params.set("team", filter.team);
  if (filter.player_id !== undefined) params.set("player_id", filter.player_id);
  return params;
}

async function fetchBoard(by, filters) {
  // Every group with a shot, from both ends of the ranking, so that live additions land on a
  // stored total and the page can apply its own minimum as shots come in.
  const rows = new Map();
  let prior;
  for (const order of ["best", "worst"]) {
    const params = new URLSearchParams(filters);
    for (const [k, v] of Object.entries({ by, order, min_shots: 1, limit: 500 })) params.set(k, v);
    const response = await fetch(`/leaderboard?${params}`);
    if (!response.ok) throw new Error(`/leaderboard?${params}: HTTP ${response.status}`);
    const body = await response.json();
    prior = body.prior_shots;
    for (const row of body.rows || []) {
      rows.set(Number(row.id), {
        name: row.name,
        team: row.team_name,
        attempts: row.attempts || 0,
        made: row.made || 0,
        points: row.field_goal_points || 0,
        expected: row.expected_field_goal_points || 0,
      });
    }
  }
  return { rows, prior };
}

function bump(map, id, name, team, shot) {
  if (id == null) return;
  const row = map.get(id) || { name: name || String(id), team: team || "", attempts: 0, made: 0, points: 0, expected: 0 };
  row.attempts += 1;
  row.made += shot.made;
  row.points += shot.points;
  row.expected += shot.expected;
  map.set(id, row);
}

function merged(base, live) {
  const rows = new Map();
  for (const [id, row] of base) rows.set(id, { id, ...row });
  for (const [id, row] of live) {
    const into = rows.get(id);
    if (into) {
      for (const key of ["attempts", "made", "points", "expected"]) into[key] += row[key];
    } else rows.set(id, { id, ...row });
  }
  return [...rows.values()];
}

function ranked(rows, prior, min, order) {
  const sign = order === "best" ? -1 : 1;
  return rows
    .filter((row) => row.attempts >= min)
    .map((row) => {
      const pae = row.points - row.expected;
      return { ...row, pae, per100: (100 * pae) / row.attempts, shrunk: pae / (row.attempts + prior) };
    })
    .sort((a, b) => sign * (a.shrunk - b.shrunk) || b.attempts - a.attempts || String(a.id).localeCompare(String(b.id)));
}
