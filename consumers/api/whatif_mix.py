"""What a player's shot from a spot is worth when the action is not given: his mix of actions.

"What if Kobe Bryant shot from the rim" is not one action.  From the restricted area his stored
shots were 2,143 plain layups (38.5% made), 1,601 driving layups (74.5%), 333 slam dunks (98%)
and more; priced as any single one of them the what-if is far from his 61.6% there.  So without
an ``action_type`` the what-if prices each of the actions he took from that zone and weighs the
answers by how often he took them: the player's own mix when he has at least
:data:`MIN_SHOTS` stored shots in the zone, the league's (every stored shot there) otherwise.

Example:
    >>> mixed([0.4, 0.8], [3, 1])
    0.5
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from parivision.store import SHOTS

__all__ = ["MIN_SHOTS", "TOP_ACTIONS", "ActionMixes", "mixed", "price_mix"]

MIN_SHOTS = 20  # fewer of the player's own shots from a zone: the league's mix there
TOP_ACTIONS = 8  # the most frequent actions priced; their shares are renormalised


def mixed(values: Sequence[float], counts: Sequence[float]) -> float:
    """The count-weighted mean of ``values``."""
    total = float(sum(counts))
    return sum(v * c for v, c in zip(values, counts, strict=True)) / total


class ActionMixes:
    """The action mixes by zone, from ``predictions``: one query per player a minute, one for
    the league every 10 minutes (a what-if click is then a lookup)."""

    def __init__(self, db, *, player_ttl_s: float = 60.0, league_ttl_s: float = 600.0) -> None:
        self.collection = db[SHOTS]
        self.ttl = {"player": player_ttl_s, "league": league_ttl_s}
        self._cache: dict[Any, tuple[float, dict[str, list[tuple[str, int]]]]] = {}
        self._lock = threading.Lock()

    def mix(self, player_id: int, zone: str) -> tuple[list[tuple[str, int]], str]:
        """The actions (with counts, most frequent first) to price a shot from ``zone`` with,
        and whose they are: ``player``, ``league`` or ``none`` (nothing stored from there)."""
        own = self._zones(player_id).get(zone, [])
        if sum(n for _, n in own) >= MIN_SHOTS:
            return own[:TOP_ACTIONS], "player"
        league = self._zones(None).get(zone, [])
        if not league:
            return [], "none"
        return league[:TOP_ACTIONS], "league"

    def _zones(self, player_id: int | None) -> dict[str, list[tuple[str, int]]]:
        ttl = self.ttl["league" if player_id is None else "player"]
        with self._lock:
            cached = self._cache.get(player_id)
        if cached is not None and time.monotonic() - cached[0] < ttl:
            return cached[1]
        match = {} if player_id is None else {"player_id": player_id}
        rows = self.collection.aggregate(
            [
                {"$match": match},
                {
                    "$group": {
                        "_id": {"zone": "$shot_zone_basic", "action": "$action_type"},
                        "n": {"$sum": 1},
                    }
                },
            ]
        )
        zones: dict[str, list[tuple[str, int]]] = {}
        for row in rows:
            zone, action = row["_id"].get("zone"), row["_id"].get("action")
            if isinstance(zone, str) and isinstance(action, str):
                zones.setdefault(zone, []).append((action, int(row["n"])))
        for actions in zones.values():
            actions.sort(key=lambda item: (-item[1], item[0]))
        with self._lock:
            self._cache[player_id] = (time.monotonic(), zones)
            if len(self._cache) > 2048:
                self._cache.pop(next(iter(self._cache)))
        return zones


def price_mix(
    score: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    shot: dict[str, Any],
    actions: list[tuple[str, int]],
    whose: str,
) -> dict[str, Any]:
    """The answer for ``shot`` taken with each of ``actions``, weighed by their counts: the
    champion's and each online learner's probability; the rest (form, model) as for the most
    frequent action, with ``action_mix`` listing each action's share and probability."""
    answers = score([{**shot, "action_type": action} for action, _ in actions])
    counts = [n for _, n in actions]
    p = mixed([a["probability"] for a in answers], counts)
    first = answers[0]
    total = sum(counts)
    return {
        **first,
        "probability": p,
        "fair_odds": 1.0 / p,
        "expected_points": p * first["shot_value"],
        "online": {
            name: mixed([a["online"][name] for a in answers], counts) for name in first["online"]
        },
        "action_mix": {
            "whose": whose,
            "shots": total,
            "actions": [
                {"action_type": action, "share": n / total, "probability": a["probability"]}
                for (action, n), a in zip(actions, answers, strict=True)
            ],
        },
    }
