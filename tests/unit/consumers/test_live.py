"""The live feed's fan-out logic: filters, bounded queues, what a slow client is told.

Fast and in-process; ``tests/integration/test_live.py`` runs the same code on the real stack.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from consumers.api.live import Filter, Hub, feed_message, serve_client

SCORED = {"shot_id": "1-1", "game_id": 7, "player_id": 3, "team_id": 11, "team_name": "Celtics"}


def _scored(i: int, **fields) -> dict:
    return {"type": "scored", **SCORED, "shot_id": f"1-{i}", **fields}


def test_filters_match_game_player_and_team_by_id_or_name() -> None:
    message = _scored(1)
    assert Filter({}).matches(message)
    assert Filter({"game_id": 7, "team": "Celtics"}).matches(message)
    assert Filter({"team": 11}).matches(message) and Filter({"team": "11"}).matches(message)
    assert not Filter({"player_id": 4}).matches(message)
    assert not Filter({"team": "Knicks"}).matches(message)


@pytest.mark.parametrize(
    "spec", [[], {"game": 1}, {"game_id": "x"}, {"player_id": True}, {"team": [1]}]
)
def test_a_bad_filter_is_refused_with_what_to_send(spec) -> None:
    with pytest.raises(ValueError):
        Filter(spec)


def test_labelled_records_become_outcome_messages_without_features() -> None:
    scored = feed_message({**SCORED, "features": {"x": 1.0}, "p_champion": 0.4})
    outcome = feed_message({**SCORED, "labelled": True, "outcome": 1, "p_champion": 0.4})
    assert scored["type"] == "scored" and "features" not in scored
    assert outcome["type"] == "outcome" and outcome["outcome"] == 1


class BlockedSocket:
    """A WebSocket whose peer stopped reading: every send after ``free`` waits forever."""

    def __init__(self, free: int = 1) -> None:
        self.free = free
        self.sent: list[dict] = []
        self.closed: tuple[int, str] | None = None
        self.incoming: asyncio.Queue[str] = asyncio.Queue()

    async def accept(self) -> None:
        pass

    async def send_text(self, text: str) -> None:
        if len(self.sent) >= self.free:
            await asyncio.Event().wait()
        self.sent.append(json.loads(text))

    async def receive_text(self) -> str:
        return await self.incoming.get()

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


def test_a_client_that_reads_nothing_is_closed_with_a_reason_and_never_blocks_publishing() -> None:
    async def scenario():
        hub = Hub(queue_size=10, max_missed=50)
        socket = BlockedSocket(free=2)  # takes the hello and one message, then stalls
        task = asyncio.create_task(serve_client(socket, hub))
        while not hub.clients:
            await asyncio.sleep(0)
        for i in range(100):
            hub.publish_many([_scored(i)])  # returns at once even though the client stalls
            await asyncio.sleep(0)
        await asyncio.wait_for(task, 5)
        return hub, socket

    hub, socket = asyncio.run(scenario())
    assert socket.closed is not None
    code, reason = socket.closed
    assert code == 1008 and reason == "too slow: 50 messages dropped in a row"
    assert not hub.clients and hub.closed_slow == 1 and hub.published == 100


def test_a_client_that_falls_behind_is_told_how_many_it_missed_then_gets_the_rest() -> None:
    async def scenario():
        hub = Hub(queue_size=5, max_missed=1000)
        socket = BlockedSocket(free=10_000)
        task = asyncio.create_task(serve_client(socket, hub))
        while not hub.clients:
            await asyncio.sleep(0)
        hub.publish_many([_scored(i) for i in range(12)])  # one burst: 5 fit, 7 are dropped
        for _ in range(50):
            await asyncio.sleep(0)
        hub.publish_many([_scored(99)])
        for _ in range(50):
            await asyncio.sleep(0)
        task.cancel()
        return socket

    socket = asyncio.run(scenario())
    kinds = [(m["type"], m.get("shot_id"), m.get("count")) for m in socket.sent]
    assert kinds == [
        ("hello", None, None),
        *[("scored", f"1-{i}", None) for i in range(5)],
        ("scored", "1-99", None),
    ] or kinds == [
        ("hello", None, None),
        ("missed", None, 7),
        *[("scored", f"1-{i}", None) for i in range(5)],
        ("scored", "1-99", None),
    ]
    assert ("missed", None, 7) in kinds


def test_a_filter_sent_by_the_client_is_acknowledged_and_applied() -> None:
    async def scenario():
        hub = Hub(queue_size=100, max_missed=1000)
        socket = BlockedSocket(free=10_000)
        task = asyncio.create_task(serve_client(socket, hub))
        while not hub.clients:
            await asyncio.sleep(0)
        await socket.incoming.put(json.dumps({"filter": {"team": "Knicks"}}))
        for _ in range(20):
            await asyncio.sleep(0)
        hub.publish_many([_scored(1), _scored(2, team_name="Knicks", team_id=12)])
        await socket.incoming.put("not json")
        for _ in range(20):
            await asyncio.sleep(0)
        task.cancel()
        return socket

    socket = asyncio.run(scenario())
    kinds = [m["type"] for m in socket.sent]
    assert kinds == ["hello", "filter", "scored", "error"]
    assert socket.sent[1]["filter"] == {"team": "Knicks"}
    assert socket.sent[2]["shot_id"] == "1-2"
