"""The live feed: ``shots.scored`` followed outside any consumer group, fanned out over WebSockets.

A :class:`Feed` thread reads every partition of ``shots.scored`` from the end, with ``assign``
rather than ``subscribe``, so no consumer group is joined and every API replica sees every shot.
It hands each polled batch to the event loop in one call, where :class:`Hub` puts each message
into the bounded queue of every client whose filter it matches, without ever waiting: a full
queue drops the message for that client and counts it.  Each client has its own sender task, so
a client that reads nothing blocks only its own task; it is told how many messages it missed
when it reads again, and closed (code 1008, with the reason) once it has missed
``max_missed`` in a row.

What a client sends is read only if it is a text frame of at most :data:`MAX_FRAME` bytes (a
filter is a few dozen); anything else is answered with an error and the connection stays open.
Teams and players in a filter are looked up by name (:mod:`consumers.api.names`): one that
matches nothing is answered with an error naming the nearest ones, never silently accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, TopicPartition
from fastapi import WebSocket
from pymongo.errors import PyMongoError

from consumers.api.names import PlayerDirectory, UnknownName, clip, resolve_team
from parivision import schemas
from parivision.settings import Settings

log = logging.getLogger("parivision.api.live")

FEED_BATCH = 200
# The largest text frame a client's message is read from; filters are far smaller.
MAX_FRAME = 4096
FILTER_HELP = 'send {"filter": {...}} to choose what to receive'

# What the feed sends of a scored record (not its features), and of a labelled one.
SCORED_FIELDS = (
    "shot_id",
    "game_id",
    "player_id",
    *schemas.SCORED_CONTEXT,
    "shot_value",
    "p_champion",
    "p_online_by_learner",
    "shadow_version",
    "p_shadow",
    "fair_odds",
    "model_version",
    "replay_id",
    "produced_at",
    "scored_at",
    "latency_ms",
)
OUTCOME_FIELDS = (*SCORED_FIELDS[:-3], "outcome", "labelled_at")


def feed_message(record: dict[str, Any]) -> dict[str, Any]:
    """The WebSocket message for one ``shots.scored`` record."""
    if record.get("labelled"):
        return {"type": "outcome", **{k: record.get(k) for k in OUTCOME_FIELDS}}
    return {"type": "scored", **{k: record.get(k) for k in SCORED_FIELDS}}


class Filter:
    """Which messages a client wants: any of game, player, team; empty is all.

    ``team`` is a team id or name (full name, nickname, city, abbreviation); ``player`` a
    player id or name, looked up in ``players``; ``player_id`` an id taken as it is (the player
    may not have shot yet).

    Raises:
        ValueError: the spec is not a filter; the message says what to send.
        UnknownName: a team or player name matches no one (or more than one).
    """

    FIELDS = ("game_id", "player_id", "player", "team")

    def __init__(self, spec: Any = None, players: PlayerDirectory | None = None) -> None:
        spec = {} if spec is None else spec
        if not isinstance(spec, dict):
            raise ValueError('a filter is an object such as {"game_id": 22000001}')
        unknown = set(spec) - set(self.FIELDS)
        if unknown:
            shown = ", ".join(clip(field, 20) for field in sorted(unknown)[:5])
            raise ValueError(f"unknown filter field(s) {shown}: use {', '.join(self.FIELDS)}")
        self.game_id = _optional_int(spec, "game_id")
        self.player_id = _optional_int(spec, "player_id")
        self.player_name: str | None = None
        player = spec.get("player")
        if player is not None:
            if isinstance(player, bool) or not isinstance(player, (int, str)):
                raise ValueError("player is a player id or a player name")
            if players is None:
                raise ValueError("player names are not looked up here: use player_id")
            found = players.resolve(player)
            if self.player_id is not None and self.player_id != found.player_id:
                raise ValueError(
                    f"player {clip(player)} is player_id {found.player_id}, not {self.player_id}"
                )
            self.player_id, self.player_name = found.player_id, found.name
        team = spec.get("team")
        self.team_id: int | None = None
        self.team_name: str | None = None  # set when the team was given by name
        if team is not None:
            if isinstance(team, bool) or not isinstance(team, (int, str)):
                raise ValueError("team is a team id or a team name")
            found_team = resolve_team(team)
            self.team_id = found_team.team_id
            numeric = isinstance(team, int) or (team.isascii() and team.strip().isdigit())
            self.team_name = None if numeric else found_team.name

    def matches(self, message: dict[str, Any]) -> bool:
        return (
            (self.game_id is None or message.get("game_id") == self.game_id)
            and (self.player_id is None or message.get("player_id") == self.player_id)
            and (self.team_id is None or message.get("team_id") == self.team_id)
        )

    def as_dict(self) -> dict[str, Any]:
        """The filter as applied: names as the data spells them, ids as given."""
        spec = {
            "game_id": self.game_id,
            "player_id": self.player_id,
            "player": self.player_name,
            "team": self.team_name or self.team_id,
        }
        return {k: v for k, v in spec.items() if v is not None}


def _optional_int(spec: dict[str, Any], name: str) -> int | None:
    value = spec.get(name)
    if value is None:
        return None
    text = str(value)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, str))
        or not text.isascii()
        or not text.isdigit()
    ):
        raise ValueError(f"{name} must be a positive integer, not {clip(value)}")
    return int(value)


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


async def serve_client(
    websocket: WebSocket, hub: Hub, players: PlayerDirectory | None = None
) -> None:
    """Run one WebSocket client until it leaves or is too slow; ``players`` looks up the
    player names its filters use."""
    await websocket.accept()
    client = hub.connect()
    await _send(websocket, {"type": "hello", "filter": {}, "queue": hub.queue_size})
    sender = asyncio.create_task(_pump(websocket, client))
    receiver = asyncio.create_task(_listen(websocket, client, players))
    slow = asyncio.create_task(client.too_slow.wait())
    try:
        done, _ = await asyncio.wait({sender, receiver, slow}, return_when=asyncio.FIRST_COMPLETED)
        if slow in done:
            reason = client.slow_reason
            log.warning("closing a live client: %s", reason)
            hub.closed_slow += 1
            sender.cancel()
            # The close frame waits behind what the client has not read; a client that
            # never reads never gets it, and the connection is dropped after the timeout.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(websocket.close(code=1008, reason=reason), timeout=10.0)
    finally:
        hub.disconnect(client)
        for task in (sender, receiver, slow):
            task.cancel()
        await asyncio.gather(sender, receiver, slow, return_exceptions=True)


async def _send(websocket: WebSocket, message: dict[str, Any]) -> None:
    await websocket.send_text(orjson.dumps(message).decode())


async def _pump(websocket: WebSocket, client: Client) -> None:
    while True:
        encoded = await client.queue.get()
        if client.missed:
            missed, client.missed = client.missed, 0
            await _send(
                websocket, {"type": "missed", "count": missed, "total": client.total_missed}
            )
        await websocket.send_text(encoded.decode())
        client.sent += 1


async def _listen(websocket: WebSocket, client: Client, players: PlayerDirectory | None) -> None:
    while True:
        frame = await websocket.receive()
        if frame["type"] == "websocket.disconnect":
            return
        text = frame.get("text")
        if text is None:
            await _error(websocket, f"binary frames are not read: {FILTER_HELP} as JSON text")
            continue
        if len(text) > MAX_FRAME or len(text.encode()) > MAX_FRAME:
            await _error(
                websocket,
                f"message of {len(text):,} characters not read: the limit is {MAX_FRAME:,} "
                f"bytes; {FILTER_HELP}",
            )
            continue
        try:
            request = orjson.loads(text)
            if not isinstance(request, dict) or "filter" not in request:
                raise ValueError(FILTER_HELP)
            # A player name may need the store: looked up off the event loop.
            client.filter = await asyncio.to_thread(Filter, request["filter"], players)
        except UnknownName as error:
            await _error(websocket, str(error), nearest=error.nearest)
            continue
        except PyMongoError as error:
            await _error(websocket, f"player names cannot be looked up now: {error}"[:300])
            continue
        except (ValueError, orjson.JSONDecodeError) as error:
            await _error(websocket, str(error))
            continue
        # Messages queued under the old filter are dropped: the client asked for other ones.
        while not client.queue.empty():
            client.queue.get_nowait()
        await _send(websocket, {"type": "filter", "filter": client.filter.as_dict()})


async def _error(websocket: WebSocket, msg: str, **extra: Any) -> None:
    await _send(websocket, {"type": "error", "msg": msg, **extra})


class Feed(threading.Thread):
    """Follows ``shots.scored`` from its end, outside any consumer group."""

    def __init__(
        self,
        settings: Settings,
        deliver: Callable[[list[dict[str, Any]]], None],
        *,
        on_outcome: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        super().__init__(name="live-feed", daemon=True)
        self.settings = settings
        self.deliver = deliver
        self.on_outcome = on_outcome
        self.topic = settings.topic(schemas.SCORED)
        self.stop_event = threading.Event()
        self.positioned = threading.Event()
        self.read = 0
        self.last_error: str | None = None

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self._follow()
            except Exception as error:  # the broker went away: say so, and try again
                self.last_error = f"{type(error).__name__}: {error}"
                log.warning("live feed: %s; retrying in 2 s", self.last_error)
                self.stop_event.wait(2.0)

    def _follow(self) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": self.settings.kafka(),
                # librdkafka wants a group id even for assign(); nothing joins or commits it.
                "group.id": self.settings.consumer_group("parivision-api-live"),
                # Records of a stream transaction once it commits, never of one aborted
                # (PARIVISION_PROCESSING_GUARANTEE=exactly_once); librdkafka's default, stated.
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                # At most ten fetches a second when the feed is quiet-ish, rather than one per
                # record batch the stream writes (each a broker request, bench/kafka_cpu.py);
                # the court page does not need the shots sooner than a tenth of a second.
                "fetch.wait.max.ms": 100,
                "fetch.min.bytes": 1_000_000,
                "socket.timeout.ms": 10_000,
            }
        )
        try:
            metadata = consumer.list_topics(self.topic, timeout=10).topics[self.topic]
            if metadata.error is not None:
                raise RuntimeError(f"topic {self.topic}: {metadata.error}")
            assignment = []
            for partition in metadata.partitions:
                _low, high = consumer.get_watermark_offsets(
                    TopicPartition(self.topic, partition), timeout=10
                )
                assignment.append(TopicPartition(self.topic, partition, high))
            consumer.assign(assignment)
            self.positioned.set()
            self.last_error = None
            while not self.stop_event.is_set():
                batch = []
                # Small batches: a batch lands in every client's queue at once, so a queue
                # must hold a few of them for a client that keeps up to never drop one.
                for message in consumer.consume(FEED_BATCH, timeout=0.05):
                    error = message.error()
                    if error is not None:
                        if error.code() != KafkaError._PARTITION_EOF:
                            self.last_error = str(error)
                        continue
                    try:
                        record = orjson.loads(message.value())
                    except (orjson.JSONDecodeError, TypeError):
                        continue
                    if not isinstance(record, dict) or "shot_id" not in record:
                        continue
                    if record.get("labelled") and self.on_outcome is not None:
                        with contextlib.suppress(Exception):
                            self.on_outcome(record)
                    batch.append(feed_message(record))
                if batch:
                    self.read += len(batch)
                    self.deliver(batch)
        finally:
            consumer.close()

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=10)


def on_loop(loop: asyncio.AbstractEventLoop, hub: Hub) -> Callable[[list[dict[str, Any]]], None]:
    """Deliver from the feed thread to the hub on its event loop, one call per batch."""

    def deliver(messages: list[dict[str, Any]]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed while shutting down
            loop.call_soon_threadsafe(hub.publish_many, messages)

    return deliver


def recent(
    hub: Hub, limit: int, spec: dict[str, Any], players: PlayerDirectory | None = None
) -> list[dict[str, Any]]:
    """The last ``limit`` feed messages that ``spec`` (a :class:`Filter` spec) keeps."""
    wanted = Filter(spec, players)
    out = [m for m in reversed(hub.recent) if wanted.matches(m)][:limit]
    out.reverse()
    return out
