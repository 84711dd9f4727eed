"""How long the worker's input fetches wait for more records at the broker.

Faust creates its aiokafka consumer with ``fetch_min_bytes=1``: a fetch returns as soon as any
record lands, so at a few hundred shots a second the worker sends the broker one fetch per
produce request of the replay, and hands on one or two records at a time.  Each fetch is a
broker request (~0.5 ms of its CPU here, ``bench/kafka_cpu.py``) and each small micro-batch a
flush of the worker's output and table writes.  Faust does not expose the two settings, so
:func:`wait_for_records` sets them on the consumer it creates: a fetch then returns once
``min_bytes`` are there or ``max_wait_ms`` has passed, whichever comes first (under a backlog
the bytes are there at once and nothing waits).
"""

from __future__ import annotations

from typing import Any

MIN_BYTES = 1_000_000


def wait_for_records(consumer: Any, max_wait_ms: int, min_bytes: int = MIN_BYTES) -> None:
    """Make the aiokafka consumer that ``consumer`` (a Faust consumer, before it starts) will
    create fetch with ``max_wait_ms`` and ``min_bytes``; ``max_wait_ms`` 0 keeps Faust's way."""
    if max_wait_ms <= 0:
        return
    thread = consumer._thread
    create = thread._create_worker_consumer

    def create_waiting(transport: Any) -> Any:
        client = create(transport)
        client._fetch_min_bytes, client._fetch_max_wait_ms = min_bytes, max_wait_ms
        return client

    thread._create_worker_consumer = create_waiting
