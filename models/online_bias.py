"""The champion corrected by biases learned online: per action type, team and player.

A champion trained on earlier seasons is off on a new one in ways that are the same for many
shots: the league's level moves, an action type goes in more or less often than it did (the
README's champion, trained mostly on 2017-18, put 2018-19's 7,135 step-back jump shots at 0.461;
they went in at 0.410), a team or a player shoots better than its features say.
:class:`ChampionBias` adds one learned bias per such group to the champion's logit::

    logit(p) = logit(p_champion) + b_league + b_action + b_team,action + b_player
               + b_player,zone

Each bias is a Gaussian belief (a mean and a variance) that starts at 0 with a prior variance
set per level, and every outcome updates the beliefs of the shot's groups together by one
Newton step on the log loss (assumed-density filtering, as in Bing's AdPredictor): a group that
has seen few outcomes keeps a wide belief and moves fast, one that has seen thousands hardly
moves; what one shot says is shared between its groups by their variances, so the league bias
takes a new season's level within a few hundred shots, and a player's bias only what the league,
the action type and his team do not explain.  Variances grow back with every shot the league
plays (a random walk, capped at the prior), so a bias keeps following a season that changes.

Predicting is a sum of five dictionary look-ups; learning touches the same five entries.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping
from typing import Any

from river.base import Classifier

from models.features import ACTION_WORDS

# The keys under which :func:`models.online.learner_input` gives a learner that works on top of
# the champion its logit, and one that learns per player and team the shooter's ids (not
# features: no model is trained on an id).  Defined here, below models.online, which imports
# this module.  The shot's zone and action words are among the features every learner sees.
CHAMPION_LOGIT, PLAYER_ID, TEAM_ID = "champion_logit", "player_id", "team_id"
ZONE = "zone_basic"
_ACTION_BITS = tuple(
    (f"action_{word.replace(' ', '_')}", 1 << i) for i, word in enumerate(ACTION_WORDS)
)

# How many league shots a level's drift is stated over (about half a regular season).
DRIFT_SHOTS = 100_000


def action_key(x: Mapping[str, Any]) -> int:
    """The shot's action type as the set of its action words, one bit each.

    The words tell the 65 action types of 2010-18 apart but for "Slam" (a "Slam Dunk Shot" is
    a "Dunk Shot" here), and they are features, so every caller has them.

    Example:
        >>> action_key({"action_jump": 1.0, "action_pullup": 1.0}), action_key({})
        (68, 0)
    """
    key = 0
    for name, bit in _ACTION_BITS:
        if x.get(name):
            key |= bit
    return key


def _zone(x: Mapping[str, Any]) -> int:
    zone = x.get(ZONE)
    return -1 if zone is None or zone != zone else int(zone)


# Each level's group of a shot, from the learner's input and its action key; None: the shot has
# none at that level (an unknown player or team), and that bias is left out.
LEVELS: dict[str, Callable[[Mapping[str, Any], int], Hashable | None]] = {
    "league": lambda x, action: 0,
    "action": lambda x, action: action,
    "team_action": lambda x, action: None if x.get(TEAM_ID) is None else (x[TEAM_ID], action),
    "player": lambda x, action: x.get(PLAYER_ID),
    "player_zone": lambda x, action: None if x.get(PLAYER_ID) is None else (x[PLAYER_ID], _zone(x)),
}

# (prior sd, drift sd per DRIFT_SHOTS league shots) of each level's bias, in logits; tuned on
# the bulk file's 2014-18 and 2010-14 seasons replayed after a champion of the season before
# (see the README's "Online learners").  The league's drift is three times what log loss there
# asked for (0.1; 0.3 costs 0.0001): after 200,000 shots its belief is so narrow that a level
# jumping by 4 points took 5,000 shots to follow, and takes 2,000 with 0.3.
DEFAULT_LEVELS: dict[str, tuple[float, float]] = {
    "league": (0.3, 0.3),
    "action": (0.17, 0.1),
    "team_action": (0.1, 0.03),
    "player": (0.1, 0.03),
    "player_zone": (0.1, 0.03),
}


def _sigmoid(margin: float) -> float:
    return 1.0 / (1.0 + math.exp(-min(max(margin, -30.0), 30.0)))


class ChampionBias(Classifier):
    """The champion's logit plus a learned bias for each of the shot's groups (see the module).

    Args:
        levels: ``{level: (prior sd, drift sd)}`` for the levels of :data:`LEVELS` to learn, in
            logits; a bias may move by the drift sd (in belief) over :data:`DRIFT_SHOTS` league
            shots, and its variance never grows past the prior's.

    Example:
        >>> learner = ChampionBias()
        >>> hot = {CHAMPION_LOGIT: 0.0, PLAYER_ID: 7, TEAM_ID: 1, "action_jump": 1.0}
        >>> learner.predict_proba_one(hot)[True]        # nothing learned: the champion's 0.5
        0.5
        >>> for i in range(1000):                       # 20 players of team 2 make half,
        ...     shot = {**hot, PLAYER_ID: 10 + i // 2 % 20, TEAM_ID: 2}
        ...     learner.learn_one(shot, i % 2 == 0)     # as the champion says
        ...     if i % 10 == 0:
        ...         learner.learn_one(hot, True)        # but player 7 makes 100 of 100
        >>> round(learner.predict_proba_one(hot)[True], 3)
        0.756
        >>> round(learner.predict_proba_one({**hot, PLAYER_ID: 12, TEAM_ID: 2})[True], 3)
        0.518

        A newcomer gets the league's and his action's biases only: the league made 600 of
        1,100 where the champion said 550.

        >>> round(learner.predict_proba_one({**hot, PLAYER_ID: 99, TEAM_ID: 3})[True], 3)
        0.558
    """

    uses_champion = True
    uses_ids = True

    def __init__(self, levels: Mapping[str, tuple[float, float]] | None = None) -> None:
        self.levels = dict(DEFAULT_LEVELS if levels is None else levels)
        unknown = sorted(set(self.levels) - set(LEVELS))
        if unknown:
            raise ValueError(f"unknown levels {unknown}; known: {', '.join(LEVELS)}")
        self._prior = {name: sd * sd for name, (sd, _) in self.levels.items()}
        self._drift = {name: d * d / DRIFT_SHOTS for name, (_, d) in self.levels.items()}
        # level -> group -> [mean, variance, league shots learned when it was last updated]
        self._beliefs: dict[str, dict[Hashable, list[float]]] = {name: {} for name in self.levels}
        self.learned = 0

    def _groups(self, x: Mapping[str, Any]) -> list[tuple[str, Hashable]]:
        action = action_key(x)
        out = []
        for name in self.levels:
            group = LEVELS[name](x, action)
            if group is not None:
                out.append((name, group))
        return out

    def biases(self, x: Mapping[str, Any]) -> dict[str, float]:
        """The bias each level adds to the champion's logit for shot ``x`` (0 where unlearned)."""
        out = {}
        for name, group in self._groups(x):
            belief = self._beliefs[name].get(group)
            out[name] = 0.0 if belief is None else belief[0]
        return out

    def predict_proba_one(self, x: dict) -> dict[bool, float]:
        margin = x.get(CHAMPION_LOGIT, 0.0)
        for name, group in self._groups(x):
            belief = self._beliefs[name].get(group)
            if belief is not None:
                margin += belief[0]
        p = _sigmoid(margin)
        return {False: 1.0 - p, True: p}

    def learn_one(self, x: dict, y: bool) -> None:
        self.learned += 1
        now = self.learned
        margin = x.get(CHAMPION_LOGIT, 0.0)
        spread = 0.0  # the variance of the margin: the sum of the biases' variances
        beliefs = []
        for name, group in self._groups(x):
            belief = self._beliefs[name].get(group)
            if belief is None:
                belief = self._beliefs[name][group] = [0.0, self._prior[name], now]
            else:
                # The random walk since the group was last seen, up to the prior's uncertainty.
                belief[1] = min(
                    belief[1] + self._drift[name] * (now - belief[2]), self._prior[name]
                )
                belief[2] = now
            margin += belief[0]
            spread += belief[1]
            beliefs.append(belief)
        p = _sigmoid(margin)
        curvature = p * (1.0 - p)
        # One Newton step on the log loss of the margin, shared out by each bias's variance.
        denominator = 1.0 + curvature * spread
        step = (float(bool(y)) - p) / denominator
        for belief in beliefs:
            variance = belief[1]
            belief[0] += variance * step
            belief[1] = variance - variance * variance * curvature / denominator
