"""The points-above-expectation leaderboard: who beats the champion's expectation per shot.

A row sums a player's (or a team's) labelled shots: field-goal points made, the points the
champion expected of the same shots (``sum(p x value)``), and their difference.  Totals favour
volume (3,000 shots next to 20), and a raw per-shot rate favours luck (3 of 3 from deep), so rows
are ranked by a *shrunk* per-shot value::

    shrunk_per_shot = sum(points - expected) / (attempts + prior_shots)

that is, each row starts with ``prior_shots`` imaginary shots at the league's value, 0 points
above expectation, and its own shots pull it away from 0 as they accumulate.

Why ``prior_shots = 100`` by default: one field-goal attempt's points above expectation has a
standard deviation near 1.1 points (a coin-flip make of a 2.3-point shot), while players' true
per-shot values spread by about 0.1 points (a few percentage points of make rate).  The shrinkage
that balances the two is (1.1 / 0.1)^2, about 120 shots; 100 is that, rounded.  A player with 100
attempts keeps half of his raw rate, one with 1,000 keeps 91%.

Example, with ``prior_shots = 100``: 30 attempts at +9 points is +0.300 a shot raw but
9 / 130 = +0.069 shrunk; 400 attempts at +20 is +0.050 raw and 20 / 500 = +0.040 shrunk.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from consumers.api.responses import unprocessable

DEFAULT_PRIOR_SHOTS = 100
DEFAULT_MIN_SHOTS = 20
_SEASON = re.compile(r"^(\d{4})-(\d{2})$")
# The same rule for the OpenAPI schema: two years in a row, 1999-00 included.
SEASON_PATTERN = (
    "^[0-9]{2}(?:" + "|".join(f"{y:02d}-{(y + 1) % 100:02d}" for y in range(100)) + ")$"
)

Group = Literal["player", "team"]
Order = Literal["best", "worst"]


def season_dates(season: str) -> tuple[int, int]:
    """The game dates (YYYYMMDD) of an NBA season written ``2018-19``: July 1 to June 30.

    >>> season_dates("2018-19")
    (20180701, 20190630)
    >>> season_dates("1999-00")
    (19990701, 20000630)
    """
    found = _SEASON.match(season.strip())
    if found is None or (int(found[1]) + 1) % 100 != int(found[2]):
        raise unprocessable(
            "season", f"{season!r} is not a season: write it as 2018-19 (two years in a row)"
        )
    start = int(found[1])
    return start * 10000 + 701, (start + 1) * 10000 + 630


def date_range(season: str | None, since: int | None, until: int | None) -> dict[str, int] | None:
    """The ``game_date`` condition for a season and/or since/until dates (both ends included),
    the tighter of each end where both are given; ``None`` when nothing is asked."""
    low, high = since, until
    if season is not None:
        first, last = season_dates(season)
        low = first if low is None else max(low, first)
        high = last if high is None else min(high, last)
    if low is not None and high is not None and low > high:
        raise unprocessable(
            "until" if until is not None else "since",
            f"the dates asked leave nothing: from {low} to {high}",
        )
    if low is None and high is None:
        return None
    return {
        **({"$gte": low} if low is not None else {}),
        **({"$lte": high} if high is not None else {}),
    }


def pipeline(by: Group, query: dict[str, Any]) -> list[dict[str, Any]]:
    """MongoDB aggregation summing each group's labelled shots in ``query``.

    The name (and a player's team) is that of the group's last shot in storage order, the
    latest stored: no sort, which over millions of shots would cost more than the sums.
    """
    key = "$player_id" if by == "player" else "$team_id"
    name = "$player_name" if by == "player" else "$team_name"
    return [
        {"$match": query},
        {
            "$group": {
                "_id": key,
                "name": {"$last": name},
                "team_name": {"$last": "$team_name"},
                "attempts": {"$sum": 1},
                "made": {"$sum": "$outcome"},
                "field_goal_points": {"$sum": {"$multiply": ["$outcome", "$shot_value"]}},
                "expected_field_goal_points": {
                    "$sum": {"$multiply": ["$p_champion", "$shot_value"]}
                },
            }
        },
    ]


def rate(group: dict[str, Any], prior_shots: int) -> dict[str, Any]:
    """A summed group as a leaderboard row, with its raw and shrunk per-shot values.

    >>> row = rate({"_id": 7, "name": "A", "team_name": "T", "attempts": 30, "made": 15,
    ...             "field_goal_points": 39, "expected_field_goal_points": 30.0}, 100)
    >>> round(row["per_shot"], 4), round(row["shrunk_per_shot"], 4), round(row["shrunk_per_100"], 2)
    (0.3, 0.0692, 6.92)
    """
    attempts = group["attempts"]
    above = group["field_goal_points"] - group["expected_field_goal_points"]
    shrunk = above / (attempts + prior_shots)
    return {
        "id": group["_id"],
        "name": group.get("name"),
        "team_name": group.get("team_name"),
        "attempts": attempts,
        "made": group["made"],
        "field_goal_points": group["field_goal_points"],
        "expected_field_goal_points": group["expected_field_goal_points"],
        "points_above_expectation": above,
        "per_shot": above / attempts,
        "per_100": 100 * above / attempts,
        "shrunk_per_shot": shrunk,
        "shrunk_per_100": 100 * shrunk,
    }


def rank(rows: list[dict[str, Any]], order: Order) -> list[dict[str, Any]]:
    """Best (or worst) shrunk value first; ties go to the row with more attempts, then the id."""
    sign = -1 if order == "best" else 1
    return sorted(rows, key=lambda r: (sign * r["shrunk_per_shot"], -r["attempts"], str(r["id"])))


def board(
    collection,
    *,
    by: Group,
    query: dict[str, Any],
    prior_shots: int,
    min_shots: int,
    order: Order,
    limit: int,
) -> dict[str, Any]:
    """The leaderboard over the labelled shots of ``collection`` matching ``query``."""
    match = {
        **query,
        "outcome": {"$ne": None},
        "shot_value": {"$gt": 0},
        "p_champion": {"$ne": None},
    }
    groups = [g for g in collection.aggregate(pipeline(by, match)) if g["_id"] is not None]
    rows = [rate(g, prior_shots) for g in groups if g["attempts"] >= min_shots]
    ranked = rank(rows, order)
    return {
        "by": by,
        "order": order,
        "prior_shots": prior_shots,
        "min_shots": min_shots,
        "groups": len(ranked),
        "below_min_shots": len(groups) - len(ranked),
        "rows": ranked[:limit],
    }
