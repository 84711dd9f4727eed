"""Feed messages as the stream's scored records become them: the live filter's and the socket's
tests build theirs here."""

from __future__ import annotations

CELTICS, KNICKS = 1610612738, 1610612752
SCORED = {
    "shot_id": "1-1",
    "game_id": 7,
    "player_id": 3,
    "team_id": CELTICS,
    "team_name": "Boston Celtics",
}


def scored(i: int, **fields) -> dict:
    """The ``i``-th scored message of one Celtics shooter, with ``fields`` over the defaults."""
    return {"type": "scored", **SCORED, "shot_id": f"1-{i}", **fields}
