"""What the live feed makes of a ``shots.scored`` record."""

from __future__ import annotations

from consumers.api.live_feed import feed_message

SCORED = {
    "shot_id": "1-1",
    "game_id": 7,
    "player_id": 3,
    "team_id": 1610612738,
    "team_name": "Boston Celtics",
}


def test_labelled_records_become_outcome_messages_without_features() -> None:
    scored = feed_message({**SCORED, "features": {"x": 1.0}, "p_champion": 0.4})
    outcome = feed_message({**SCORED, "labelled": True, "outcome": 1, "p_champion": 0.4})
    assert scored["type"] == "scored" and "features" not in scored
    assert outcome["type"] == "outcome" and outcome["outcome"] == 1
