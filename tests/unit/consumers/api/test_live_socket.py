"""A WebSocket client of the live feed: its filters, its bounded queue, what it is told if slow.

Fast and in-process; ``tests/integration/test_live.py`` runs the same code on the real stack.
"""

from __future__ import annotations

import asyncio
import json

from consumers.api.live_hub import Hub
from consumers.api.live_socket import MAX_FRAME, serve_client
from tests.unit.consumers.api.feed_messages import KNICKS, scored


class BlockedSocket:
    """A WebSocket whose peer stopped reading: every send after ``free`` waits forever."""

    def __init__(self, free: int = 1) -> None:
        self.free = free
        self.sent: list[dict] = []
        self.closed: tuple[int, str] | None = None
        self.incoming: asyncio.Queue[str | bytes] = asyncio.Queue()

    async def accept(self) -> None:
        pass

    async def send_text(self, text: str) -> None:
        if len(self.sent) >= self.free:
            await asyncio.Event().wait()
        self.sent.append(json.loads(text))

    async def receive(self) -> dict:
        frame = await self.incoming.get()
        kind = "bytes" if isinstance(frame, bytes) else "text"
        return {"type": "websocket.receive", kind: frame}

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
            hub.publish_many([scored(i)])  # returns at once even though the client stalls
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
        hub.publish_many([scored(i) for i in range(12)])  # one burst: 5 fit, 7 are dropped
        for _ in range(50):
            await asyncio.sleep(0)
        hub.publish_many([scored(99)])
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
        await _until(lambda: len(socket.sent) == 2)
        hub.publish_many([scored(1), scored(2, team_name="New York Knicks", team_id=KNICKS)])
        await socket.incoming.put("not json")
        await _until(lambda: len(socket.sent) == 4)
        task.cancel()
        return socket

    socket = asyncio.run(scenario())
    kinds = [m["type"] for m in socket.sent]
    assert kinds == ["hello", "filter", "scored", "error"]
    assert socket.sent[1]["filter"] == {"team": "New York Knicks"}
    assert socket.sent[2]["shot_id"] == "1-2"


async def _until(done, timeout: float = 10.0) -> None:
    """Let the client's tasks run (the filter is built in a thread) until ``done()``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not done():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.001)


def _talk(frames: list[str | bytes]) -> list[dict]:
    """Send ``frames`` one after the other, each once the previous one was answered."""

    async def scenario():
        hub = Hub(queue_size=100, max_missed=1000)
        socket = BlockedSocket(free=10_000)
        task = asyncio.create_task(serve_client(socket, hub))
        await _until(lambda: len(socket.sent) == 1)
        for answered, frame in enumerate(frames, start=2):
            await socket.incoming.put(frame)
            await _until(lambda n=answered: len(socket.sent) == n)
        assert not task.done() and socket.closed is None
        task.cancel()
        return socket.sent[1:]

    return asyncio.run(scenario())


def test_a_typo_in_a_team_is_answered_with_the_nearest_names_not_accepted() -> None:
    error, ack = _talk(
        [json.dumps({"filter": {"team": "Miami Heats"}}), json.dumps({"filter": {"team": "MIA"}})]
    )
    assert error["type"] == "error" and "Miami Heat" in error["nearest"]
    assert "Miami Heats" in error["msg"]
    assert ack == {"type": "filter", "filter": {"team": "Miami Heat"}}


def test_binary_and_oversized_frames_are_refused_and_the_connection_stays() -> None:
    big_value = json.dumps({"filter": {"team": "x" * 2_000_000}})
    just_over = json.dumps({"filter": {"team": "y" * MAX_FRAME}})
    under = json.dumps({"filter": {"team": "z" * (MAX_FRAME - 100)}})
    answers = _talk(
        [
            b"\x00\x01",
            big_value,
            "w" * 5_000_000,
            just_over,
            under,
            '{"filter": {"team": 1610612752}}',
        ]
    )
    binary, big, huge, over, long_name, ack = answers
    assert [binary["type"], big["type"], huge["type"], over["type"], long_name["type"]] == [
        "error"
    ] * 5
    assert "binary" in binary["msg"]
    assert all("limit" in m["msg"] for m in (big, huge, over))
    # Nothing sent comes back beyond a short prefix.
    assert all(len(json.dumps(m)) < 400 for m in answers), [len(json.dumps(m)) for m in answers]
    assert "zzzz" in long_name["msg"]
    assert ack == {"type": "filter", "filter": {"team": KNICKS}}
