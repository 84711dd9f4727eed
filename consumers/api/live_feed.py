"""The live feed's source: ``shots.scored`` followed outside any consumer group.

A :class:`Feed` thread reads every partition of ``shots.scored`` from the end, with ``assign``
rather than ``subscribe``, so no consumer group is joined and every API replica sees every shot.
It turns each record into the message clients receive (:func:`feed_message`: the scored record
without its features, or its outcome) and hands each polled batch to the event loop in one call
(:func:`on_loop`), where the :class:`~consumers.api.live_hub.Hub` fans it out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from confluent_kafka import Consumer, KafkaError, TopicPartition

from parivision import schemas
from parivision.settings import Settings

if TYPE_CHECKING:
    from consumers.api.live_hub import Hub

log = logging.getLogger("parivision.api.live")

FEED_BATCH = 200

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
