"""Replaying a source into Kafka: attempts now, outcomes after a delay, bad rows to the DLQ.

Messages are keyed by player id, so one player's shots stay in order on one partition (player form
is a per-player state: see :mod:`models.form`), and a shot's outcome lands on the same partition
number as its attempt.
"""

from __future__ import annotations

import heapq
import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from itertools import count

from confluent_kafka import KafkaException, Producer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from parivision import schemas
from parivision.metrics import REPLAY, Metrics, for_job
from parivision.settings import Settings
from producers.base import BadRow, Source, SourceShot
from streams.validate import dead_letter


@dataclass
class ReplayStats:
    replay_id: str
    produced: int = 0
    outcomes: int = 0
    bad_rows: int = 0
    seconds: float = 0.0
    bad_examples: list[str] = field(default_factory=list)

    @property
    def shots_per_second(self) -> float:
        return self.produced / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "shots_per_second": round(self.shots_per_second, 1)}


def kafka_producer(settings: Settings, **overrides) -> Producer:
    config = {
        "bootstrap.servers": settings.kafka(),
        "linger.ms": 5,
        "batch.num.messages": 10000,
        "queue.buffering.max.messages": 500000,
        # The Java client's partitioner, so every client agrees where a game's shots go.
        "partitioner": "murmur2_random",
        "enable.idempotence": True,
        **overrides,
    }
    return Producer(config)


def _produce(producer: Producer, topic: str, key: bytes, value: bytes) -> None:
    while True:
        try:
            producer.produce(topic, value=value, key=key)
            return
        except BufferError:
            # Local queue full: let librdkafka deliver some, then try again (never drop).
            producer.poll(0.05)


def replay(
    settings: Settings,
    source: Source,
    *,
    pacer,
    limit: int | None = None,
    outcome_delay_s: float | None = None,
    replay_id: str | None = None,
    console: Console | None = None,
    show_progress: bool = True,
    metrics: Metrics | None = None,
) -> ReplayStats:
    """Send up to ``limit`` shots from ``source``; each outcome follows its attempt after
    ``outcome_delay_s`` seconds.  Returns when every message is acknowledged by the broker.

    ``metrics`` (the replay job's, see :mod:`parivision.metrics`) count what was sent."""
    metrics = metrics or for_job(REPLAY)
    sent_attempts = metrics["produced"].labels(kind="attempt")
    sent_outcomes = metrics["produced"].labels(kind="outcome")
    bad_rows = metrics["dead_letters"].labels(stage="source", reason="bad_row")
    delay = settings.outcome_delay_s if outcome_delay_s is None else outcome_delay_s
    stats = ReplayStats(replay_id=replay_id or uuid.uuid4().hex[:12])
    attempts_topic = settings.topic(schemas.ATTEMPTS)
    outcomes_topic = settings.topic(schemas.OUTCOMES)
    dlq_topic = settings.topic(schemas.DLQ)
    producer = kafka_producer(settings)
    errors: list[str] = []

    def on_delivery(err, _msg) -> None:
        if err is not None:
            errors.append(str(err))

    due: list[tuple[float, int, bytes, bytes]] = []
    tie = count()

    def send_due_outcomes(now: float) -> None:
        while due and due[0][0] <= now:
            _, _, key, value = heapq.heappop(due)
            _produce(producer, outcomes_topic, key, value)
            stats.outcomes += 1
            sent_outcomes.inc()

    started = time.perf_counter()
    with Progress(
        TextColumn("replay {task.fields[name]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>8.0f} shots/s"),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
        disable=not show_progress,
    ) as progress:
        task = progress.add_task("replay", total=limit, name=source.name, rate=0.0)
        for item in source:
            if limit is not None and stats.produced >= limit:
                break
            if isinstance(item, BadRow):
                stats.bad_rows += 1
                if len(stats.bad_examples) < 5:
                    stats.bad_examples.append(f"{item.where}: {item.reason}")
                _produce(
                    producer,
                    dlq_topic,
                    b"",
                    dead_letter(item.raw.encode(), f"{item.where}: {item.reason}", stage="source"),
                )
                bad_rows.inc()
                continue
            assert isinstance(item, SourceShot)
            pacer.wait(item.shot)
            now = time.time()
            shot = {**item.shot, "replay_id": stats.replay_id, "produced_at": now}
            key = str(shot["player_id"]).encode()
            _produce(producer, attempts_topic, key, json.dumps(shot).encode())
            sent_attempts.inc()
            if item.made is not None:
                outcome = {
                    "shot_id": shot["shot_id"],
                    "game_id": shot["game_id"],
                    "player_id": shot["player_id"],
                    "made": item.made,
                    "replay_id": stats.replay_id,
                }
                heapq.heappush(due, (now + delay, next(tie), key, json.dumps(outcome).encode()))
            stats.produced += 1
            send_due_outcomes(now)
            producer.poll(0)
            if stats.produced % 1000 == 0:
                elapsed = time.perf_counter() - started
                progress.update(task, completed=stats.produced, rate=stats.produced / elapsed)
        # The rest of the outcomes keep their delay: labels never arrive before they are due.
        while due:
            time.sleep(max(0.0, min(0.05, due[0][0] - time.time())))
            send_due_outcomes(time.time())
            producer.poll(0)
        remaining = producer.flush(60)
        stats.seconds = time.perf_counter() - started
        progress.update(
            task, completed=stats.produced, total=stats.produced, rate=stats.shots_per_second
        )
    if remaining:
        raise KafkaException(f"{remaining} messages not delivered to Kafka at {settings.kafka()}")
    if errors:
        raise KafkaException(f"{len(errors)} messages failed delivery, first: {errors[0]}")
    return stats
