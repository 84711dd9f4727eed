"""The hub's memory of the feed: what a page that opens is sent, and a player's latest shot."""

from __future__ import annotations

from consumers.api.live_hub import Hub, recent

KNICKS = 1610612752


def _message(i: int, kind: str = "scored", **fields) -> dict:
    return {"type": kind, "shot_id": f"1-{i}", "game_id": 7, "player_id": 3, **fields}


def test_recent_is_the_last_matching_messages_oldest_first_within_what_the_hub_keeps() -> None:
    hub = Hub(recent=5)
    hub.publish_many([_message(i, team_id=KNICKS if i % 2 else 1) for i in range(8)])
    # Only 1-3 .. 1-7 are kept; of those the Knicks' are 1-3, 1-5 and 1-7.
    assert [m["shot_id"] for m in recent(hub, 10, {})] == [f"1-{i}" for i in range(3, 8)]
    assert [m["shot_id"] for m in recent(hub, 2, {"team": "Knicks"})] == ["1-5", "1-7"]
    assert hub.published == 8


def test_last_seen_is_the_players_latest_scored_shot_not_an_outcome() -> None:
    hub = Hub()
    hub.publish_many(
        [_message(1), _message(2, player_id=4), _message(3), _message(1, kind="outcome")]
    )
    assert hub.last_seen(3)["shot_id"] == "1-3"
    assert hub.last_seen(4)["shot_id"] == "1-2"
    assert hub.last_seen(5) is None
