"""Running a sink: consume in batches, flush, then commit offsets (at-least-once).

Offsets are committed after a flush, and never past a record the sink still holds back
(:meth:`consumers.base.Sink.holding`).  A failed flush is retried with backoff and never
committed past; the error names the service so an operator knows what to fix.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from consumers.base import Sink
from parivision import schemas
from parivision.metrics import SINK, Metrics, for_job
from parivision.settings import Settings

log = logging.getLogger("parivision.sink")


def sink_consumer(settings: Settings, group: str | None = None) -> Consumer:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka(),
            "group.id": group or settings.sink_consumer_group(),
            "auto.offset.reset": "earliest",
            # Records of a stream transaction once it commits, never of one aborted
            # (PARIVISION_PROCESSING_GUARANTEE=exactly_once); librdkafka's default, stated.
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 1000,
            # One fetch per 100 ms at the demo's rates, not one per produce request: a fetch
            # that asks for 1 byte returns as soon as any record lands, and each is a broker
            # request (bench/kafka_cpu.py).  The sink flushes every sink_flush_s anyway; under a
            # backlog the byte threshold is met at once and nothing waits.
            "fetch.wait.max.ms": 100,
            "fetch.min.bytes": 1_000_000,
        }
    )
    consumer.subscribe([settings.topic(schemas.ATTEMPTS), settings.topic(schemas.SCORED)])
    return consumer


def run_sink(
    settings: Settings,
    sink: Sink,
    *,
    stop: threading.Event,
    describe_target: str = "the sink",
    on_flush: Callable[[int], None] | None = None,
    metrics: Metrics | None = None,
) -> int:
    """Consume until ``stop`` is set; return how many records were written.

    ``metrics`` (the sink job's; by default the sink's own) get the write errors and the
    consumer lag."""
    metrics = metrics or getattr(sink, "metrics", None) or for_job(SINK)
    group = settings.sink_consumer_group()
    consumer = sink_consumer(settings)
    total = 0
    last_flush = time.monotonic()
    next_lag = 0.0
    try:
        while not stop.is_set():
            if time.monotonic() >= next_lag:
                export_lag(metrics, consumer, group)
                next_lag = time.monotonic() + LAG_EVERY_S
            messages = consumer.consume(
                num_messages=settings.sink_batch_size, timeout=settings.sink_flush_s
            )
            for message in messages:
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        log.warning("kafka: %s", error)
                    continue
                try:
                    value = orjson.loads(message.value())
                except (TypeError, ValueError, RecursionError):
                    continue  # malformed attempts are the stream's to dead-letter
                if isinstance(value, dict):
                    topic = message.topic()
                    sink.add(
                        topic, message.key(), value, (topic, message.partition(), message.offset())
                    )
            due = time.monotonic() - last_flush >= settings.sink_flush_s
            if sink.pending() and (
                sink.pending() >= settings.sink_batch_size or due or not messages
            ):
                written = _flush_with_retry(sink, stop, describe_target, metrics=metrics)
                if written is None:
                    break
                _commit(consumer, sink.holding())
                total += written
                last_flush = time.monotonic()
                if on_flush:
                    on_flush(written)
        sink.release()
        if (
            sink.pending()
            and _flush_with_retry(sink, stop, describe_target, attempts=3, metrics=metrics)
            is not None
        ):
            _commit(consumer, sink.holding())
    finally:
        consumer.close()
    return total


def _commit(consumer: Consumer, held: dict[tuple[str, int], int]) -> None:
    """Commit what was written; if the broker is away, the next commit carries it.

    ``held`` caps a partition's commit at the earliest record the sink holds back from it.
    The records are in the sink already and writing them again changes nothing, so a commit
    that fails (the broker restarting, its coordinator not known yet) is no reason to stop.
    """
    try:
        if not held:
            consumer.commit(asynchronous=False)
            return
        offsets = []
        for tp in consumer.position(consumer.assignment()):
            at = tp.offset
            cap = held.get((tp.topic, tp.partition))
            if cap is not None and (at < 0 or cap < at):
                at = cap
            if at >= 0:
                offsets.append(TopicPartition(tp.topic, tp.partition, at))
        if offsets:
            consumer.commit(offsets=offsets, asynchronous=False)
    except KafkaException as error:
        log.warning(
            "committing the sink's offsets failed (%s); the next commit carries them",
            error,
        )


# How often the sink exports how far behind it is.
LAG_EVERY_S = 5.0


def export_lag(metrics: Metrics, consumer: Consumer, group: str) -> None:
    """Consumer lag per assigned partition: the high watermark less the consumer's position
    (its committed offset before it has fetched anything).  Never raises: lag is advisory.

    The high watermark is the one the last fetch response carried (``cached=True``) and the
    position is the client's own, so a look costs no broker request.  Asking the broker
    instead queued each request behind a fetch the broker holds for up to
    ``fetch.wait.max.ms`` on the same connection: with eight partitions a look blocked the
    sink for about a second every five, and the shots read meanwhile waited for it.  Only a
    partition nothing has been fetched from yet asks the broker.
    """
    lag = metrics["lag"]
    try:
        assigned = consumer.assignment()
        positions = {(tp.topic, tp.partition): tp.offset for tp in consumer.position(assigned)}
        values: dict[tuple[str, int], int] = {}
        unknown = []
        for tp in assigned:
            key = (tp.topic, tp.partition)
            cached = consumer.get_watermark_offsets(
                TopicPartition(tp.topic, tp.partition), cached=True
            )
            high = cached[1] if cached else -1
            at = positions.get(key, -1)
            if high < 0 or at < 0:
                unknown.append(tp)
            else:
                values[key] = max(0, high - at)
        if unknown:
            committed = {
                (tp.topic, tp.partition): tp.offset for tp in consumer.committed(unknown, timeout=2)
            }
            for tp in unknown:
                asked = consumer.get_watermark_offsets(
                    TopicPartition(tp.topic, tp.partition), timeout=2
                )
                if not asked:
                    continue
                high = asked[1]
                at = positions.get((tp.topic, tp.partition), -1)
                if at < 0:  # nothing fetched yet: where the group will start
                    at = max(committed.get((tp.topic, tp.partition), -1), 0)
                values[(tp.topic, tp.partition)] = max(0, high - at)
        lag.clear()
        for (topic, partition), behind in values.items():
            lag.labels(group=group, topic=topic, partition=str(partition)).set(behind)
    except Exception as error:  # the broker is away: the next look will tell
        log.debug("could not read the sink's consumer lag: %s", error)


def _flush_with_retry(
    sink: Sink,
    stop: threading.Event,
    target: str,
    attempts: int | None = None,
    metrics: Metrics | None = None,
):
    delay, tried = 0.5, 0
    while True:
        try:
            return sink.flush()
        except Exception as error:  # the driver's errors vary; all mean "not written"
            if metrics is not None:
                metrics["write_errors"].inc()
            tried += 1
            log.error("writing to %s failed (%s); retrying in %.1fs", target, error, delay)
            if (attempts is not None and tried >= attempts) or stop.wait(delay):
                return None
            delay = min(delay * 2, 10.0)
