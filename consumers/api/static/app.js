// PariVision live court: the WebSocket feed drawn on a half court, with filters, a what-if
// click, a rolling log-loss chart and a points-above-expectation leaderboard.
// Plain browser JavaScript, no build step and no network beyond this page's own API.
"use strict";

(() => {
  const MAX_SHOTS = 2000; // drawn shots kept; older ones leave the court so a long replay stays fast
  const LOGLOSS_WINDOW = 500; // outcomes in the rolling log loss
  const LOGLOSS_MIN = 50; // fewer outcomes than this give a line too noisy to read
  const HISTORY_POINTS = 600; // points per chart line
  const BOARD_ROWS = { player: 8, team: 5 };
  const BOARD_MIN_SHOTS = 20; // the API's default min_shots
  const BOARD_MIN_SHOTS_GAME = 5; // one game gives a player a dozen shots, not twenty
  const BOARD_PRIOR_SHOTS = 100; // the API's default prior_shots, until its answer says
  const RECENT_LIMIT = 500;
  const PANEL_EVERY_MS = 250; // stats, chart and leaderboard redraw at most this often
  const SVG_NS = "http://www.w3.org/2000/svg";
  const COURT = { xMin: -250, xMax: 250, yMin: -52, yMax: 418 };
  // RdYlBu, reversed: cold blue for long shots, red for near-certain ones. Clamped outside.
  const STOPS = [
    [0.2, [44, 123, 182]],
    [0.35, [171, 217, 233]],
    [0.45, [255, 255, 191]],
    [0.55, [253, 174, 97]],
    [0.7, [215, 25, 28]],
  ];
  const SERIES_COLOURS = ["#38bdf8", "#c084fc", "#34d399", "#f472b6", "#fbbf24", "#fb923c"];
  const COIN_FLIP = Math.log(2);

  const $ = (id) => document.getElementById(id);
  const epochMs = () => performance.timeOrigin + performance.now();

  const state = {
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

  // ---------------------------------------------------------------- colour scale
  function colourFor(p) {
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

  function drawLegend() {
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

  function svg(tag, attrs) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    return el;
  }

  // ---------------------------------------------------------------- shots on the court
  function matches(shot) {
    const f = state.filter;
    return (
      (f.game_id === undefined || shot.game_id === f.game_id) &&
      (f.team === undefined || shot.team_id === f.team) &&
      (f.player_id === undefined || shot.player_id === f.player_id)
    );
  }

  function remember(msg) {
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

  function shotFor(msg) {
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

  function setShotState(shot, outcome) {
    shot.state = outcome ? "made" : "missed";
    if (!shot.el) return;
    shot.el.setAttribute("class", `shot ${shot.state}`);
    shot.el.setAttribute("data-state", shot.state);
  }

  // ---------------------------------------------------------------- feed messages
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

  function handle(msg, live) {
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

  // ---------------------------------------------------------------- WebSocket with backoff
  const feed = { ws: null, retries: 0, opened: false, timer: null };

  function connect() {
    clearTimeout(feed.timer);
    setStatus("connecting", "connecting…");
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    let ws;
    try {
      ws = new WebSocket(`${scheme}${location.host}/ws/live`);
    } catch (err) {
      reconnectLater(`cannot open the feed (${err.message})`);
      return;
    }
    feed.ws = ws;
    ws.onopen = () => {
      const again = feed.opened;
      feed.retries = 0;
      feed.opened = true;
      setStatus("connected", "live");
      sendFilter();
      if (again) loadRecent(); // shots scored while we were away
    };
    ws.onmessage = (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch (err) {
        console.warn("PariVision: a feed message is not JSON", event.data);
        return;
      }
      handle(msg, true);
    };
    ws.onclose = (event) => {
      if (feed.ws !== ws) return;
      feed.ws = null;
      if (event.code === 1008) showNotice(`The server closed the feed: ${event.reason || "policy violation"}.`, "warn");
      reconnectLater(event.reason);
    };
  }

  function reconnectLater(reason) {
    const delay = Math.min(10000, 500 * 2 ** feed.retries) * (0.8 + 0.4 * Math.random());
    feed.retries += 1;
    const until = Date.now() + delay;
    const tick = () => {
      const left = Math.max(0, Math.ceil((until - Date.now()) / 1000));
      setStatus("reconnecting", `reconnecting in ${left} s`, reason);
      if (Date.now() < until) feed.timer = setTimeout(tick, 500);
      else connect();
    };
    tick();
  }

  function setStatus(kind, text, detail) {
    const el = $("status");
    el.dataset.state = kind;
    $("status-text").textContent = text;
    el.title = detail || "";
  }

  // ---------------------------------------------------------------- filters
  function sendFilter() {
    if (feed.ws && feed.ws.readyState === WebSocket.OPEN) {
      feed.ws.send(JSON.stringify({ filter: state.filter }));
    }
  }

  function readFilter() {
    const filter = {};
    for (const id of ["filter-game", "filter-team", "filter-player"]) {
      const select = $(id);
      if (select.value !== "") filter[select.dataset.key] = Number(select.value);
    }
    return filter;
  }

  function applyFilter() {
    const before = JSON.stringify(state.filter);
    state.filter = readFilter();
    const layer = $("shots");
    const keep = document.createDocumentFragment();
    for (const shot of state.shots.values()) {
      if (shot.el && matches(shot)) keep.appendChild(shot.el);
    }
    layer.replaceChildren(keep);
    if (state.filter.player_id !== undefined) $("whatif-player").value = String(state.filter.player_id);
    sendFilter();
    if (JSON.stringify(state.filter) !== before) board.load(); // the board follows every filter
    describeFilter(state.filter);
    schedulePanels();
  }

  function describeFilter(filter) {
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

  function refreshOptions() {
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

  // ---------------------------------------------------------------- rolling log loss
  const logloss = {
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

  // ---------------------------------------------------------------- leaderboard
  // Rows rank by points above expectation per shot, shrunk toward the league (0) by the API's
  // prior: (points - expected) / (attempts + prior). The base comes from GET /leaderboard with
  // the page's filters; outcomes labelled after it are added live, so the ranking is redone here.
  const board = {
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

  function fillBoard(table, rows, players, min) {
    const body = table.tBodies[0];
    if (!rows.length) {
      const tr = document.createElement("tr");
      tr.className = "empty";
      const td = document.createElement("td");
      td.colSpan = 6;
      td.textContent = `no ${players ? "player" : "team"} with ${min}+ labelled shots yet`;
      tr.appendChild(td);
      body.replaceChildren(tr);
      return;
    }
    body.replaceChildren(
      ...rows.map((row) => {
        const tr = document.createElement("tr");
        tr.dataset.id = row.id;
        tr.dataset.attempts = row.attempts;
        tr.dataset.pae = row.pae.toFixed(4);
        tr.dataset.shrunk = row.shrunk.toFixed(6);
        const name = document.createElement("td");
        name.className = "who";
        name.title = players && row.team ? `${row.name}, ${row.team}` : row.name;
        const who = document.createElement("span");
        who.className = "name";
        who.textContent = row.name;
        name.appendChild(who);
        if (players && row.team) {
          const team = document.createElement("span");
          team.className = "team";
          team.textContent = row.team.split(" ").pop();
          name.appendChild(team);
        }
        tr.append(
          name,
          cell(row.attempts.toLocaleString()),
          cell(row.points.toLocaleString()),
          cell(row.expected.toLocaleString(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 })),
          signed(100 * (row.pae / row.attempts), "raw"),
          signed(100 * row.shrunk, "pae"),
        );
        return tr;
      }),
    );
  }

  function signed(value, className) {
    const td = cell(`${value >= 0 ? "+" : "−"}${Math.abs(value).toFixed(1)}`);
    td.className = `${className} ${value >= 0 ? "up" : "down"}`;
    return td;
  }

  function cell(value) {
    const td = document.createElement("td");
    td.textContent = typeof value === "number" ? value.toLocaleString() : value;
    return td;
  }

  // ---------------------------------------------------------------- what if
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

  async function askWhatIf(event) {
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

  function text(tag, className, content) {
    const el = document.createElement(tag);
    el.className = className;
    el.textContent = content;
    return el;
  }

  // ---------------------------------------------------------------- tooltip
  function showTooltip(event) {
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

  // ---------------------------------------------------------------- panels, notices, loading
  let panelsPending = false;

  function schedulePanels() {
    if (panelsPending) return;
    panelsPending = true;
    setTimeout(renderPanels, PANEL_EVERY_MS);
  }

  function renderPanels() {
    panelsPending = false;
    refreshOptions();
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
    logloss.render();
    board.render();
    if (state.arrivals.length) schedulePanels(); // keep the rate falling to zero when the feed stops
  }

  let noticeTimer = null;

  function showNotice(message, kind) {
    const el = $("notice");
    el.textContent = message;
    el.dataset.kind = kind || "info";
    el.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => (el.hidden = true), 10000);
  }

  async function loadRecent() {
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

  function start() {
    drawLegend();
    for (const id of ["filter-game", "filter-team", "filter-player"]) $(id).addEventListener("change", applyFilter);
    $("filter-clear").addEventListener("click", () => {
      for (const id of ["filter-game", "filter-team", "filter-player"]) $(id).value = "";
      applyFilter();
    });
    for (const button of document.querySelectorAll("#board-order button")) {
      button.addEventListener("click", () => board.setOrder(button.dataset.order));
    }
    $("court").addEventListener("click", askWhatIf);
    $("court").addEventListener("mousemove", showTooltip);
    $("court").addEventListener("mouseleave", () => ($("tooltip").hidden = true));
    for (const id of ["filter-game", "filter-team", "filter-player", "whatif-player"]) {
      $(id).addEventListener("blur", schedulePanels);
    }
    for (const id of ["whatif-player", "whatif-period", "whatif-clock", "whatif-season"]) {
      $(id).addEventListener("change", () => {
        const marker = $("whatif-marker");
        if (!marker.hasAttribute("hidden") && $("whatif-result").dataset.x !== undefined) {
          const r = $("whatif-result").dataset;
          askWhatIfAt(Number(r.x), Number(r.y));
        }
      });
    }
    connect(); // first, so nothing scored while the history loads is lost
    loadRecent();
    board.load();
    schedulePanels();
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

  window.pariVision = { state, logloss, board }; // for a look from the console
  start();
})();
