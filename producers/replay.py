"""Replaying a source into Kafka: attempts now, outcomes a little later, bad rows to the DLQ.

Messages are keyed by player id, so one player's shots stay in order on one partition (player form
is a per-player state: see :mod:`models.form`), and a shot's outcome lands on the same partition
number as its attempt.

A broker that goes away in the middle of a replay loses nothing and duplicates nothing: the
producer is idempotent (the broker drops a retried copy it already has), keeps what it cannot
send in its queue and retries until :data:`DELIVERY_TIMEOUT_S`; only then does the replay give
up, naming the broker and how many messages it never took.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from confluent_kafka import KafkaError, KafkaException, Producer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from parivision import schemas
from parivision.dlq import dead_letter
from parivision.metrics import REPLAY, Metrics, for_job
from parivision.settings import Settings
from parivision.sources.base import BadRow, Source, SourceShot
from producers.outcomes import GameTimeOutcomes, Outbox, WallTimeOutcomes

log = logging.getLogger("parivision.replay")


def _client_logger() -> logging.Logger:
    # librdkafka reports every refused connection while the broker is away; the replay says
    # once that it is unreachable (Delivery.on_error) and keeps the rest out of the terminal.
    logger = logging.getLogger("parivision.replay.kafka")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
        logger.propagate = False
    return logger


# How long a message may wait for the broker (librdkafka's message.timeout.ms, its default made
# explicit): a broker restarted, or away for less than this, loses nothing.
DELIVERY_TIMEOUT_S = 300.0


class DeliveryError(KafkaException):
    """The broker did not take some of the replay's messages: it is down, or refused them.

    ``undelivered`` names the shots: ``attempt <shot id>`` or ``outcome <shot id>`` (a
    dead-lettered source row has no shot id: ``dead letter``)."""

    def __init__(self, message: str, undelivered: list[str] | None = None) -> None:
        super().__init__(message)
        self.undelivered = undelivered or []


# At most this many undelivered shots are named in the error itself; all are in its file.
NAMED_UNDELIVERED = 10


def _shot_of(message) -> str:
    """``attempt <id>``, ``outcome <id>`` or ``dead letter``: what a message carried."""
    topic = message.topic() or ""
    kind = (
        "attempt"
        if topic.endswith(schemas.ATTEMPTS)
        else "outcome"
        if topic.endswith(schemas.OUTCOMES)
        else "dead letter"
    )
    if kind == "dead letter":
        return kind
    try:
        return f"{kind} {json.loads(message.value())['shot_id']}"
    except (ValueError, KeyError, TypeError):
        return kind


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
        # Retries until the delivery timeout, in order, and never writes a message twice.
        "enable.idempotence": True,
        "message.timeout.ms": int(DELIVERY_TIMEOUT_S * 1000),
        # Look for a restarted broker every second, not up to every 10 s (librdkafka's default).
        "reconnect.backoff.max.ms": 1000,
        **overrides,
    }
    return Producer(config)


# How long an outcome that is due may wait for others to share its produce request (at most;
# never past its player's next attempt): see producers.outcomes.Outbox.
OUTCOME_HOLD_S = 0.02

# How long a replay waits for the broker to describe its topics before the first shot.
TOPICS_WAIT_S = 5.0


def _learn_topics(producer: Producer, topics: tuple[str, ...]) -> None:
    """Ask the broker for the topics' partitions and leaders before the first shot is stamped.

    A new producer learns them only when its first message waits for them, 0.5-0.6 s on the
    local broker; the demo's first shots then carried a 1.2 s produce -> scored latency, and the
    next second of shots the queue behind them.  Asked first, the first delivery takes 8 ms.
    Best effort: a broker that does not answer is reported by the deliveries, as before."""
    for topic in topics:
        try:
            producer.list_topics(topic, timeout=TOPICS_WAIT_S)
        except KafkaException as error:
            log.debug("could not describe %s before the replay: %s", topic, error)
            return


class Delivery:
    """What the broker refused or never took, and whether it is reachable now.

    librdkafka retries on its own while the broker is away; this says so once, says when it is
    back, and turns a message it gave up on (or a fatal producer error) into a
    :class:`DeliveryError` that names the broker.
    """

    def __init__(self, bootstrap: str, timeout_s: float) -> None:
        self.bootstrap = bootstrap
        self.timeout_s = timeout_s
        self.failed = 0
        self.undelivered: list[str] = []
        self.first_error: str | None = None
        self.fatal: KafkaError | None = None
        self.down_since: float | None = None

    def on_delivery(self, error: KafkaError | None, message) -> None:
        if error is not None:
            self.failed += 1
            self.undelivered.append(_shot_of(message))
            if error.code() != KafkaError._PURGE_QUEUE:  # our own giving up, not the cause
                self.first_error = self.first_error or error.str()
        elif self.down_since is not None:
            log.warning(
                "Kafka at %s is back after %.0f s; sending what the replay held",
                self.bootstrap,
                time.monotonic() - self.down_since,
            )
            self.down_since = None

    def on_error(self, error: KafkaError) -> None:
        if error.fatal():
            self.fatal = error
        elif error.code() == KafkaError._ALL_BROKERS_DOWN and self.down_since is None:
            self.down_since = time.monotonic()
            log.warning(
                "Kafka at %s is unreachable: the replay holds its messages and retries for up "
                "to %.0f s",
                self.bootstrap,
                self.timeout_s,
            )

    def check(self, waiting: int = 0) -> None:
        """Raise if anything was given up on."""
        if self.fatal is not None:
            raise DeliveryError(
                f"the producer to Kafka at {self.bootstrap} stopped: {self.fatal.str()}. "
                "Check the broker's log; replaying the same shots again is safe (the sink "
                "keeps one copy of each)",
                list(self.undelivered),
            )
        if self.failed or waiting:
            what = f"{self.failed} messages were not delivered to Kafka at {self.bootstrap}"
            if waiting:
                what += f" and {waiting} are still waiting for it"
            raise DeliveryError(
                f"{what} (first error: {self.first_error or 'none reported'}). Is the broker "
                f"running? `parivision up` starts the local one; it was given {self.timeout_s:.0f} "
                "s. Replaying the same shots again is safe (the sink keeps one copy of each)",
                list(self.undelivered),
            )


def _give_up(
    producer: Producer, delivery: Delivery, error: DeliveryError, record: Path
) -> DeliveryError:
    """Stop sending: every message still queued or in flight is given up on now (librdkafka
    would otherwise try each for its whole delivery timeout), and the error names them all,
    also in ``record``, one a line, so the user knows exactly which shots to send again."""
    producer.purge()
    producer.flush(5.0)  # the purged messages' delivery reports
    shots = [shot for shot in delivery.undelivered if shot != "dead letter"]
    if not shots:
        return error
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text("".join(f"{shot}\n" for shot in delivery.undelivered))
    named = ", ".join(shots[:NAMED_UNDELIVERED])
    more = f" and {len(shots) - NAMED_UNDELIVERED} more" if len(shots) > NAMED_UNDELIVERED else ""
    return DeliveryError(
        f"{error.args[0]}\n{len(shots)} shots not delivered (or not known to be): {named}{more}; "
        f"all in {record}",
        list(delivery.undelivered),
    )


def _produce(producer: Producer, delivery: Delivery, topic: str, key: bytes, value: bytes) -> None:
    while True:
        try:
            producer.produce(topic, value=value, key=key, on_delivery=delivery.on_delivery)
            return
        except BufferError:
            # Local queue full (the broker is slow or away): wait for librdkafka to deliver
            # some, then try again; never drop, but stop once it gave up on any.
            producer.poll(0.05)
            delivery.check()


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
    delivery_timeout_s: float = DELIVERY_TIMEOUT_S,
) -> ReplayStats:
    """Send up to ``limit`` shots from ``source``; each outcome follows its attempt
    ``settings.outcome_delay_s`` seconds of game time later (:mod:`producers.outcomes`), or
    ``outcome_delay_s`` wall seconds when given (a late-label drill; so does
    ``settings.outcome_timing == "wall"``).  Returns when every message is acknowledged.

    A broker away for less than ``delivery_timeout_s`` (in the middle or at the end) delays the
    replay's end, nothing else; after that, :class:`DeliveryError` says how many messages the
    broker never took.  ``metrics`` (the replay job's, see :mod:`parivision.metrics`) count
    what was sent."""
    metrics = metrics or for_job(REPLAY)
    sent_attempts = metrics["produced"].labels(kind="attempt")
    sent_outcomes = metrics["produced"].labels(kind="outcome")
    bad_rows = metrics["dead_letters"].labels(stage="source", reason="bad_row")
    if outcome_delay_s is not None or settings.outcome_timing == "wall":
        delay = settings.outcome_delay_s if outcome_delay_s is None else outcome_delay_s
        schedule: WallTimeOutcomes = WallTimeOutcomes(delay)
    else:
        # Game seconds, on the replay's game clock (a clock pacer's speed turns them into wall
        # time; at a rate or --max they have none, and the next shots decide).
        schedule = GameTimeOutcomes(settings.outcome_delay_s, getattr(pacer, "speed", 1.0))
    stats = ReplayStats(replay_id=replay_id or uuid.uuid4().hex[:12])
    attempts_topic = settings.topic(schemas.ATTEMPTS)
    outcomes_topic = settings.topic(schemas.OUTCOMES)
    dlq_topic = settings.topic(schemas.DLQ)
    delivery = Delivery(settings.kafka(), delivery_timeout_s)
    producer = kafka_producer(
        settings,
        **{
            "message.timeout.ms": int(delivery_timeout_s * 1000),
            "error_cb": delivery.on_error,
            "logger": _client_logger(),
        },
    )
    _learn_topics(producer, (attempts_topic, outcomes_topic))

    outbox = Outbox(OUTCOME_HOLD_S)

    def send_outcomes(messages: list[tuple[bytes, bytes]]) -> None:
        for key, value in messages:
            _produce(producer, delivery, outcomes_topic, key, value)
            stats.outcomes += 1
            sent_outcomes.inc()

    started = time.perf_counter()
    try:
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
                        delivery,
                        dlq_topic,
                        b"",
                        dead_letter(
                            item.raw.encode(), f"{item.where}: {item.reason}", stage="source"
                        ),
                    )
                    bad_rows.inc()
                    continue
                assert isinstance(item, SourceShot)
                pacer.wait(item.shot)
                now = time.time()
                key = str(item.shot["player_id"]).encode()
                outbox.put(schedule.before_attempt(item.shot), now)
                send_outcomes(outbox.take(now, before=key))
                shot = {**item.shot, "replay_id": stats.replay_id, "produced_at": now}
                _produce(producer, delivery, attempts_topic, key, json.dumps(shot).encode())
                sent_attempts.inc()
                if item.made is not None:
                    outcome = {
                        "shot_id": shot["shot_id"],
                        "game_id": shot["game_id"],
                        "player_id": shot["player_id"],
                        "made": item.made,
                        "replay_id": stats.replay_id,
                    }
                    schedule.add(item.shot, (key, json.dumps(outcome).encode()), now)
                stats.produced += 1
                outbox.put(schedule.due(now), now)
                send_outcomes(outbox.take(now))
                producer.poll(0)
                delivery.check()
                if stats.produced % 1000 == 0:
                    elapsed = time.perf_counter() - started
                    progress.update(task, completed=stats.produced, rate=stats.produced / elapsed)
            # The rest of the outcomes keep their delay: labels never arrive before they are due.
            while (next_due := schedule.next_due()) is not None:
                time.sleep(max(0.0, min(0.05, next_due - time.time())))
                now = time.time()
                outbox.put(schedule.due(now), now)
                send_outcomes(outbox.take(now))
                producer.poll(0)
                delivery.check()
            send_outcomes(outbox.take_all())
            # Every message ends acknowledged or failed within the delivery timeout: wait for that.
            deadline = time.monotonic() + delivery_timeout_s + 30.0
            while len(producer) and time.monotonic() < deadline:
                producer.flush(1.0)
                delivery.check()
            stats.seconds = time.perf_counter() - started
            progress.update(
                task, completed=stats.produced, total=stats.produced, rate=stats.shots_per_second
            )
        delivery.check(waiting=len(producer))
    except DeliveryError as error:
        record = settings.deployment_dir("logs") / f"replay-{stats.replay_id}-undelivered.txt"
        raise _give_up(producer, delivery, error, record) from None
    return stats
