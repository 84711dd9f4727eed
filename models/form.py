"""Player form: what a player's earlier shots say about the next one, from the past only.

One player's state is a small JSON-able dict (the stream keeps it in a changelogged table keyed
by player id).  Two functions act on it, and both the batch and the stream call exactly these:

- :func:`form_values` reads the state for a shot *before* its outcome is known;
- :func:`record_outcome` folds the shot's outcome in once it is known.

Batch work (:func:`player_form`) walks the shots in time order and records each outcome before
the next shot; the stream holds a player's next attempt until the outcomes of that player's
earlier ones have arrived (see :mod:`streams.flow`), so it sees the same states in the same
order and computes the same values.

Rates are shrunk towards a prior (the league's make rate, by zone where the rate is by zone), so
a player's first shots do not get rates of 0 or 1.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

FORM_NAMES: tuple[str, ...] = (
    "player_log_shots_before",
    "player_rate",
    "player_zone_log_shots_before",
    "player_zone_rate",
    "player_recent_rate",
    "game_shots_before",
    "game_made_before",
    "prev_made_in_game",
    "secs_since_prev_in_game",
)

# League make rates by basic zone (NBA, 1996-2020, from nba_shots.csv); the prior for unknowns.
ZONE_PRIOR: dict[str, float] = {
    "Restricted Area": 0.63,
    "In The Paint (Non-RA)": 0.41,
    "Mid-Range": 0.40,
    "Left Corner 3": 0.39,
    "Right Corner 3": 0.38,
    "Above the Break 3": 0.35,
    "Backcourt": 0.03,
}
LEAGUE_PRIOR = 0.46
# How many shots' worth of weight the prior carries in a shrunk rate.
PRIOR_SHOTS = 20.0
RECENT_PRIOR_SHOTS = 5.0
# The "recent" window: the player's last this-many shots, across games.
RECENT = 25

# Columns the batch computation reads, besides the outcome ``made``.
FORM_INPUT_COLUMNS = (
    "player_id",
    "game_id",
    "period",
    "minutes_remaining",
    "seconds_remaining",
    "shot_zone_basic",
)

_NAN = float("nan")


def new_state() -> dict[str, Any]:
    """A player never seen: no shots, no game."""
    return {"n": 0, "m": 0, "z": {}, "r": "", "g": None, "gn": 0, "gm": 0, "lm": None, "lt": None}


def game_seconds(period: int, minutes_remaining: int, seconds_remaining: int) -> float:
    """Seconds of game time elapsed at the shot: 12-minute quarters, 5-minute overtimes."""
    left = minutes_remaining * 60 + seconds_remaining
    if period <= 4:
        return (period - 1) * 720.0 + 720.0 - left
    return 2880.0 + (period - 5) * 300.0 + 300.0 - left


def _shrunk(made: float, shots: float, prior: float, weight: float) -> float:
    return (made + weight * prior) / (shots + weight)


def form_values(state: Mapping[str, Any], shot: Mapping[str, Any]) -> tuple[float, ...]:
    """The :data:`FORM_NAMES` values of ``shot`` given the player's ``state`` before it.

    Example:
        >>> state = new_state()
        >>> shot = {"game_id": 1, "period": 1, "minutes_remaining": 11, "seconds_remaining": 0,
        ...         "shot_zone_basic": "Mid-Range"}
        >>> [round(v, 3) for v in form_values(state, shot)[:2]]
        [0.0, 0.46]
        >>> record_outcome(state, shot, 1)
        >>> [round(v, 3) for v in form_values(state, {**shot, "seconds_remaining": 30})[:2]]
        [0.693, 0.486]
    """
    zone = shot["shot_zone_basic"]
    zone_n, zone_m = state["z"].get(zone, (0, 0))
    recent = state["r"]
    in_game = state["g"] == shot["game_id"]
    if in_game and state["lt"] is not None:
        now = game_seconds(shot["period"], shot["minutes_remaining"], shot["seconds_remaining"])
        since = now - state["lt"]
    else:
        since = _NAN
    # Counts as log(1 + n): they grow without bound over a career, which a linear learner's
    # running scaler cannot follow.
    return (
        math.log1p(state["n"]),
        _shrunk(state["m"], state["n"], LEAGUE_PRIOR, PRIOR_SHOTS),
        math.log1p(zone_n),
        _shrunk(zone_m, zone_n, ZONE_PRIOR.get(zone, LEAGUE_PRIOR), PRIOR_SHOTS),
        _shrunk(recent.count("1"), len(recent), LEAGUE_PRIOR, RECENT_PRIOR_SHOTS),
        float(state["gn"]) if in_game else 0.0,
        float(state["gm"]) if in_game else 0.0,
        float(state["lm"]) if in_game and state["lm"] is not None else _NAN,
        since,
    )


def record_outcome(state: dict[str, Any], shot: Mapping[str, Any], made: int) -> None:
    """Fold a shot's outcome into its player's ``state`` (in place)."""
    made = 1 if made else 0
    state["n"] += 1
    state["m"] += made
    zone = shot["shot_zone_basic"]
    zone_n, zone_m = state["z"].get(zone, (0, 0))
    state["z"][zone] = [zone_n + 1, zone_m + made]
    state["r"] = (state["r"] + str(made))[-RECENT:]
    if state["g"] != shot["game_id"]:
        state["g"], state["gn"], state["gm"] = shot["game_id"], 0, 0
    state["gn"] += 1
    state["gm"] += made
    state["lm"] = made
    state["lt"] = game_seconds(shot["period"], shot["minutes_remaining"], shot["seconds_remaining"])


def form_summary(state: Mapping[str, Any]) -> dict[str, Any]:
    """What a player's state says now, for people: shots, shrunk rates overall, recently and by
    zone, and the current game, the same numbers :func:`form_values` feeds the model."""
    recent = state["r"]
    return {
        "shots": state["n"],
        "made": state["m"],
        "rate": _shrunk(state["m"], state["n"], LEAGUE_PRIOR, PRIOR_SHOTS),
        "recent_shots": len(recent),
        "recent_rate": _shrunk(recent.count("1"), len(recent), LEAGUE_PRIOR, RECENT_PRIOR_SHOTS),
        "zones": {
            zone: {
                "shots": n,
                "made": m,
                "rate": _shrunk(m, n, ZONE_PRIOR.get(zone, LEAGUE_PRIOR), PRIOR_SHOTS),
            }
            for zone, (n, m) in sorted(state["z"].items())
        },
        "last_game": None
        if state["g"] is None
        else {
            "game_id": state["g"],
            "shots": state["gn"],
            "made": state["gm"],
            "last_made": state["lm"],
        },
    }


def form_shot(shot: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a shot that :func:`form_values` and :func:`record_outcome` read."""
    return {name: shot[name] for name in FORM_INPUT_COLUMNS}


def player_form(
    columns: Mapping[str, Any], states: Mapping[str, Mapping[str, Any]] | None = None
) -> np.ndarray:
    """Form values for labelled shots given in time order, each outcome known before the next.

    ``columns`` is columnar (a DataFrame works) with :data:`FORM_INPUT_COLUMNS` and ``made``.
    ``states`` (player id as text -> state, from :func:`form_states`) warm-starts the players it
    holds, as if their earlier shots had come first; it is not changed.
    Returns an ``(n, len(FORM_NAMES))`` array.
    """
    return _fold(columns, _warm(states))[0]


def form_states(
    columns: Mapping[str, Any], states: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """Every player's state after the shots in ``columns`` (time order, labelled), keyed by the
    player id as text, the way the stream's table keys them: the history to warm-start from.

    Example:
        >>> shots = {"player_id": [7, 7], "game_id": [1, 1], "period": [1, 1],
        ...          "minutes_remaining": [11, 10], "seconds_remaining": [0, 0],
        ...          "shot_zone_basic": ["Mid-Range"] * 2, "made": [1, 0]}
        >>> warm = form_states(shots)
        >>> warm["7"]["n"], warm["7"]["m"]
        (2, 1)
        >>> later = {name: values[1:] for name, values in shots.items()}
        >>> bool((player_form(later, form_states({k: v[:1] for k, v in shots.items()}))
        ...       == player_form(shots)[1:]).all())
        True
    """
    return {str(player): state for player, state in _fold(columns, _warm(states))[1].items()}


def _warm(states: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    # A deep copy through JSON: a state is JSON-able by design (it lives in the stream's table).
    return {str(k): json.loads(json.dumps(v)) for k, v in (states or {}).items()}


def _fold(
    columns: Mapping[str, Any], warm: dict[str, dict[str, Any]]
) -> tuple[np.ndarray, dict[Any, dict[str, Any]]]:
    missing = [c for c in (*FORM_INPUT_COLUMNS, "made") if c not in columns]
    if missing:
        raise ValueError(
            "player form is computed from earlier outcomes in time order: the shots need "
            f"columns {', '.join(missing)} (or pass the stream's form values)"
        )
    states: dict[Any, dict[str, Any]] = {}
    rows = []
    shot: dict[str, Any] = {}
    for values in zip(*(list(columns[c]) for c in (*FORM_INPUT_COLUMNS, "made")), strict=True):
        shot = dict(zip(FORM_INPUT_COLUMNS, values[:-1], strict=True))
        state = states.get(shot["player_id"])
        if state is None:
            state = warm.pop(str(shot["player_id"]), None) or new_state()
            states[shot["player_id"]] = state
        rows.append(form_values(state, shot))
        record_outcome(state, shot, values[-1])
    # Players of the warm start who had no shot here keep their state.
    states.update(warm)
    if not rows:
        return np.empty((0, len(FORM_NAMES)), dtype=np.float64), states
    return np.asarray(rows, dtype=np.float64), states
