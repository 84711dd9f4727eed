"""Publishing the stream's results with librdkafka, flushed before the batch is acknowledged.

Faust's own producer path costs several futures per message, which dominates a worker that
emits two records per shot.  The scored and dead-letter records go through a confluent-kafka
producer instead; :meth:`Output.drain` is awaited at the end of every micro-batch, before Faust
acknowledges (and later commits) the batch's input offsets, so a crash can repeat a record but
never lose one.  A broker that goes away holds the batch until it is back: the drain waits as long
as librdkafka keeps retrying (:data:`DELIVERY_TIMEOUT_S`), since an agent that raised would have
its batch acknowledged as it unwinds, and lose it; the event loop stays free meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from confluent_kafka import KafkaException, Producer

from streams.tables import MAX_ENTRY_BYTES

# How long a record may wait for the broker (librdkafka's message.timeout.ms, its default made
# explicit): a broker restarted within this loses nothing; after it, the flush raises.
DELIVERY_TIMEOUT_S = 300.0
# How often drain() looks whether the broker has everything (it never blocks the loop).
DRAIN_POLL_S = 0.001


class Output:
    def __init__(
        self, bootstrap: str, *, linger_ms: int = 2, config: dict[str, Any] | None = None
    ) -> None:
        self.bootstrap = bootstrap
        self._producer: Producer | None = None
        self._linger_ms = linger_ms
        self._config = config or {}
        self._errors: list[str] = []

    @property
    def producer(self) -> Producer:
        # Created on first use, inside the worker, never at import or app definition.
        if self._producer is None:
            self._producer = Producer(
                {
                    "bootstrap.servers": self.bootstrap,
                    "linger.ms": self._linger_ms,
                    "enable.idempotence": True,
                    "partitioner": "murmur2_random",
                    "queue.buffering.max.messages": 500_000,
                    "message.timeout.ms": int(DELIVERY_TIMEOUT_S * 1000),
                    # The tables' changelog entries go out here too, and one player's entry may
                    # be far over librdkafka's 1 MB default (streams.tables.MAX_ENTRY_BYTES).
                    "message.max.bytes": MAX_ENTRY_BYTES + 64 * 1024,
                    **self._config,
                }
            )
        return self._producer

    def _on_delivery(self, error, _message) -> None:
        if error is not None:
            self._errors.append(str(error))

    def send(
        self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None
    ) -> None:
        """Queue a record (``partition`` None: by its key); :meth:`drain` waits for it."""
        producer = self.producer
        extra = {} if partition is None else {"partition": partition}
        while True:
            try:
                producer.produce(
                    topic, value=value, key=key, on_delivery=self._on_delivery, **extra
                )
                return
            except BufferError:
                producer.poll(0.01)

    def committing_for(self) -> float:
        """How long the worker has been waiting for a commit of its output (0: not waiting);
        while it waits it reads nothing.  Records here are awaited per batch, never held."""
        return 0.0

    def reachable(self, timeout: float = 2.0) -> bool:
        """Whether a broker answers a metadata request now (blocking: call it in a thread)."""
        try:
            self.producer.list_topics(timeout=timeout)
        except KafkaException:
            return False
        return True

    def learn_topics(self, topics: tuple[str, ...], timeout: float = 10.0) -> bool:
        """Create the producer and ask the broker for ``topics`` now (blocking: call it in a
        thread when the worker starts), so the first micro-batch does not wait for them.

        A producer learns a topic's partitions and leaders, and its idempotent producer id,
        only when its first record waits for them: 0.5 s on the local broker, during which the
        first batch's flush held the worker's event loop (its timers woke 0.51 s late) and the
        replay's first shots queued behind it."""
        try:
            for topic in topics:
                self.producer.list_topics(topic, timeout=timeout)
        except KafkaException:
            return False  # the flush will wait for the broker, and say so if it must
        return True

    async def drain(self, timeout: float = DELIVERY_TIMEOUT_S + 30.0) -> None:
        """:meth:`flush` that leaves the event loop free: it looks every
        :data:`DRAIN_POLL_S` whether the broker has everything, and lets the loop run between.

        A flush usually takes a round trip to the broker (a few ms).  The loop meanwhile takes
        in the next micro-batch (:mod:`streams.batches`), so the round trip costs the worker
        no throughput; and while a broker restarts or a partition's leader moves, the worker
        still heart-beats, exports metrics, runs its timers and stops when told to."""
        if self._producer is None:
            return
        producer = self._producer
        deadline = time.monotonic() + timeout
        remaining = producer.flush(0)  # serves delivery reports; sends without the linger
        while remaining and time.monotonic() < deadline:
            await asyncio.sleep(DRAIN_POLL_S)
            remaining = producer.flush(0)
        self._raise_failed(remaining)

    def flush(self, timeout: float = DELIVERY_TIMEOUT_S + 30.0) -> None:
        """Block until everything sent is acknowledged by the broker; raise if anything failed.

        Every record is acknowledged or failed within the delivery timeout, so by default this
        waits for that rather than giving up on a broker that is only restarting.
        """
        if self._producer is None:
            return
        self._raise_failed(self._producer.flush(timeout))

    def _raise_failed(self, remaining: int) -> None:
        if remaining or self._errors:
            errors, self._errors = self._errors, []
            raise KafkaException(
                f"{remaining} records not delivered to Kafka at {self.bootstrap}"
                + (f"; first error: {errors[0]}" if errors else "")
            )
