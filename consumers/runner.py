"""Running a sink: consume in batches, flush, then commit offsets (at-least-once).

A failed flush is retried with backoff and never committed past; the error names the service so
an operator knows what to fix.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError

from consumers.base import Sink
from parivision import schemas
from parivision.settings import Settings

log = logging.getLogger("parivision.sink")


def sink_consumer(settings: Settings, group: str | None = None) -> Consumer:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka(),
            "group.id": group or settings.sink_group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 1000,
            "fetch.wait.max.ms": 50,
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
) -> int:
    """Consume until ``stop`` is set; return how many records were written."""
    consumer = sink_consumer(settings)
    total = 0
    last_flush = time.monotonic()
    try:
        while not stop.is_set():
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
                    value = json.loads(message.value())
                except (TypeError, ValueError):
                    continue  # malformed attempts are the stream's to dead-letter
                if isinstance(value, dict):
                    sink.add(message.topic(), message.key(), value)
            due = time.monotonic() - last_flush >= settings.sink_flush_s
            if sink.pending() and (
                sink.pending() >= settings.sink_batch_size or due or not messages
            ):
                written = _flush_with_retry(sink, stop, describe_target)
                if written is None:
                    break
                consumer.commit(asynchronous=False)
                total += written
                last_flush = time.monotonic()
                if on_flush:
                    on_flush(written)
        if (
            sink.pending()
            and _flush_with_retry(sink, stop, describe_target, attempts=3) is not None
        ):
            consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return total


def _flush_with_retry(sink: Sink, stop: threading.Event, target: str, attempts: int | None = None):
    delay, tried = 0.5, 0
    while True:
        try:
            return sink.flush()
        except Exception as error:  # the driver's errors vary; all mean "not written"
            tried += 1
            log.error("writing to %s failed (%s); retrying in %.1fs", target, error, delay)
            if (attempts is not None and tried >= attempts) or stop.wait(delay):
                return None
            delay = min(delay * 2, 10.0)
