"""The live feed's fan-out: a :class:`Hub` puts each message into every matching client's queue.

Publishing never waits: each client has a bounded queue, and a full queue drops the message for
that client and counts it (:class:`Client`).  A client that has missed ``max_missed`` in a row is
marked too slow, for :func:`consumers.api.live_socket.serve_client` to close.  The hub keeps the
most recent messages for pages that open (:func:`recent`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import orjson

from consumers.api.live_filter import Filter
from consumers.api.names import PlayerDirectory


class Client:
    """One WebSocket client: its filter, its bounded queue and what it missed."""

    def __init__(self, queue_size: int, max_missed: int) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=queue_size)
        self.filter = Filter()
        self.max_missed = max_missed
        self.missed = 0  # dropped since the client last heard about it
        self.total_missed = 0
        self.missed_in_a_row = 0
        self.sent = 0
        self.too_slow = asyncio.Event()
        self.slow_reason = ""

    def offer(self, message: dict[str, Any], encoded: bytes) -> bool:
        """Queue a message for the client; False when it was dropped (the queue is full)."""
        if not self.filter.matches(message):
            return True
        try:
            self.queue.put_nowait(encoded)
            self.missed_in_a_row = 0
            return True
        except asyncio.QueueFull:
            self.missed += 1
            self.total_missed += 1
            self.missed_in_a_row += 1
            if self.missed_in_a_row >= self.max_missed and not self.too_slow.is_set():
                self.slow_reason = f"too slow: {self.missed_in_a_row:,} messages dropped in a row"
                self.too_slow.set()
            return False


class Hub:
    """Fans feed messages out to clients; keeps the most recent ones for pages that open."""

    def __init__(
        self, queue_size: int = 1000, max_missed: int = 10_000, recent: int = 2000
    ) -> None:
        self.queue_size = queue_size
        self.max_missed = max_missed
        self.clients: set[Client] = set()
        self.recent: deque[dict[str, Any]] = deque(maxlen=recent)
        self.published = 0
        self.closed_slow = 0
        self.dropped = 0  # messages dropped for clients that did not keep up

    def last_seen(self, player_id: int) -> dict[str, Any] | None:
        """The player's latest scored shot among the recent messages, if any."""
        for message in reversed(self.recent):
            if message["type"] == "scored" and message.get("player_id") == player_id:
                return message
        return None

    def connect(self) -> Client:
        client = Client(self.queue_size, self.max_missed)
        self.clients.add(client)
        return client

    def disconnect(self, client: Client) -> None:
        self.clients.discard(client)

    def publish_many(self, messages: list[dict[str, Any]]) -> None:
        """Called on the event loop; never waits."""
        for message in messages:
            encoded = orjson.dumps(message)
            self.recent.append(message)
            for client in self.clients:
                if not client.offer(message, encoded):
                    self.dropped += 1
        self.published += len(messages)


def recent(
    hub: Hub, limit: int, spec: dict[str, Any], players: PlayerDirectory | None = None
) -> list[dict[str, Any]]:
    """The last ``limit`` feed messages that ``spec`` (a :class:`Filter` spec) keeps."""
    wanted = Filter(spec, players)
    out = [m for m in reversed(hub.recent) if wanted.matches(m)][:limit]
    out.reverse()
    return out
