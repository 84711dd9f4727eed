"""The Faust worker: validate, score with the champion, keep predictions, join outcomes.

Shots are processed in micro-batches (``take_events``): features and the champion's predictions
are computed for the whole batch at once, which is what makes tens of thousands of shots per
second possible in one Python process.

Both input topics are keyed by game id and have the same partition count, so the outcome of a shot
arrives on the same partition number as its attempt and finds its kept prediction in this
worker's table.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import faust

from models.registry import Champion
from parivision import schemas
from parivision.settings import Settings
from streams.output import Output
from streams.scoring import Scorer, compact, expand
from streams.validate import InvalidRecord, dead_letter, parse_attempt, parse_outcome

log = logging.getLogger("parivision.stream")

_dumps = json.dumps


class EventPartitionTable(faust.Table):
    """A table whose changelog partition is the partition of the shot's own event.

    Faust takes the changelog partition from the *current* event, which inside a micro-batch is
    the last one buffered, not the one whose key is being written.  Writing each key under its
    own event's partition keeps recovery and rebalancing correct.
    """

    _explicit_partition: int | None = None

    def partition_for_key(self, key: Any) -> int | None:
        if self._explicit_partition is not None:
            return self._explicit_partition
        return super().partition_for_key(key)

    @contextmanager
    def at_partition(self, partition: int) -> Iterator[EventPartitionTable]:
        self._explicit_partition = partition
        try:
            yield self
        finally:
            self._explicit_partition = None


def _table(app: faust.App, name: str, partitions: int) -> EventPartitionTable:
    table = EventPartitionTable(
        app,
        name=name,
        default=None,
        beacon=app.tables.beacon,
        partitions=partitions,
        schema=faust.Schema(key_serializer="json", value_serializer="json"),
    )
    return app.tables.add(table)


def create_app(settings: Settings, champion: Champion, *, learner: str = "logreg") -> faust.App:
    """Build the worker's app around a loaded champion (nothing connects until it runs)."""
    brokers = [f"kafka://{server.strip()}" for server in settings.kafka().split(",")]
    app = faust.App(
        settings.stream_group(),
        broker=brokers,
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        topic_disable_leader=True,
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=6.0,
        broker_heartbeat_interval=1.0,
        producer_linger_ms=5,
        # Fetch and buffer in chunks several micro-batches deep, so the agent never waits on a
        # round trip to the broker between two batches.
        broker_max_poll_records=max(4 * settings.batch_size, 2000),
        stream_buffer_maxsize=max(8 * settings.batch_size, 8192),
        stream_recovery_delay=0.0,
    )
    scorer = Scorer(champion, learner)
    app.scorer = scorer  # for tests and the metrics timer

    attempts = app.topic(settings.topic(schemas.ATTEMPTS), partitions=settings.partitions)
    outcomes = app.topic(settings.topic(schemas.OUTCOMES), partitions=settings.partitions)
    scored_topic = settings.topic(schemas.SCORED)
    dlq_topic = settings.topic(schemas.DLQ)
    output = Output(settings.kafka())

    # Predictions waiting for their outcome, and outcomes that overtook their attempt.
    pending = _table(app, "pending", settings.partitions)
    early = _table(app, "early-outcomes", settings.partitions)

    def to_dlq(event: faust.types.EventT, reason: str, stage: str) -> None:
        message = event.message
        output.send(
            dlq_topic,
            message.key,
            dead_letter(
                event.value,
                reason,
                stage=stage,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                key=message.key,
            ),
        )

    def publish_labelled(key: bytes | None, kept: dict[str, Any], made: int) -> None:
        output.send(scored_topic, key, _dumps(scorer.label(kept, made)).encode())

    @app.agent(attempts, name="score-attempts")
    async def score_attempts(stream: faust.StreamT) -> None:
        async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
            shots, kept_events = [], []
            for event in events:
                try:
                    shots.append(parse_attempt(event.value))
                    kept_events.append(event)
                except InvalidRecord as error:
                    to_dlq(event, str(error), "validate-attempt")
            for event, record in zip(kept_events, scorer.score_batch(shots), strict=True):
                key = event.message.key
                output.send(scored_topic, key, _dumps(record).encode())
                shot_id = record["shot_id"]
                # The record kept until the outcome carries the features the learner will learn.
                kept = record
                with (
                    pending.at_partition(event.message.partition),
                    early.at_partition(event.message.partition),
                ):
                    made = early.get(shot_id)
                    if made is None:
                        pending[shot_id] = compact(kept)
                    else:
                        del early[shot_id]
                        publish_labelled(key, kept, made)
            output.flush()

    @app.agent(outcomes, name="join-outcomes")
    async def join_outcomes(stream: faust.StreamT) -> None:
        async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
            for event in events:
                try:
                    outcome = parse_outcome(event.value)
                except InvalidRecord as error:
                    to_dlq(event, str(error), "validate-outcome")
                    continue
                shot_id = outcome["shot_id"]
                with (
                    pending.at_partition(event.message.partition),
                    early.at_partition(event.message.partition),
                ):
                    kept = pending.get(shot_id)
                    if kept is None:
                        early[shot_id] = outcome["made"]
                        continue
                    del pending[shot_id]
                    publish_labelled(event.message.key, expand(kept), outcome["made"])
            output.flush()

    @app.timer(interval=10.0)
    async def report_metrics() -> None:
        if scorer.scored:
            log.info("live metrics %s", _dumps(scorer.live_metrics()))

    return app


def run_worker(app: faust.App, *, loglevel: str = "info") -> None:
    """Run the worker in this process until it is stopped (SIGINT/SIGTERM)."""
    from faust.worker import Worker

    worker = Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
