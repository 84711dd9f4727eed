"""Reading only what Kafka transactions committed (exactly once, :mod:`streams.transactions`).

The worker's Faust consumer reads ``read_committed`` (:func:`read_committed`), its own offset
commits are off, since each transaction commits the offsets it consumed
(:func:`no_offset_commits`), and table recovery ends at each changelog's last committed record
(:class:`CommittedRecovery`): a log written in transactions ends in a commit marker, which no
consumer is handed, and Faust's recovery would wait for it for ever.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from faust.tables.recovery import Recovery


def read_committed(app: Any) -> None:
    """Make the Faust worker's consumer (inputs and changelogs) read ``read_committed``."""
    thread = app.consumer._thread
    create = thread._create_worker_consumer

    def create_read_committed(transport: Any) -> Any:
        consumer = create(transport)
        consumer._isolation_level = "read_committed"  # read by its fetcher when it starts
        return consumer

    thread._create_worker_consumer = create_read_committed


def no_offset_commits(app: Any) -> None:
    """Turn off Faust's own offset commits: the transactions commit the offsets."""

    async def committed_in_transactions(offsets: Any) -> bool:
        return False

    app.consumer._commit = committed_in_transactions


def last_records(
    bootstrap: str, ends: dict[tuple[str, int], int], *, window: int = 256, timeout: float = 60.0
) -> dict[tuple[str, int], int]:
    """The offset of the last committed record before ``ends[tp]`` (a ``read_committed`` end)
    of each partition, or -1 if there is none: the tail of each is read, further back while it
    holds only transaction markers and aborted records."""
    result = {tp: -1 for tp, end in ends.items() if end <= 0}
    todo = {tp: end for tp, end in ends.items() if end > 0}
    if not todo:
        return result
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "parivision-recovery-tail",  # never joined, never committed
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
        }
    )
    try:
        lows = {
            tp: consumer.get_watermark_offsets(TopicPartition(*tp), timeout=timeout)[0]
            for tp in todo
        }
        back = window
        deadline = time.monotonic() + timeout
        while todo:
            starts = {tp: max(lows[tp], end - back) for tp, end in todo.items()}
            consumer.assign([TopicPartition(t, p, starts[(t, p)]) for t, p in todo])
            found: dict[tuple[str, int], int] = {}
            ended: set[tuple[str, int]] = set()
            while len(ended) < len(todo):
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"could not read the end of {sorted(set(todo) - ended)} at {bootstrap} "
                        f"within {timeout:.0f} s"
                    )
                message = consumer.poll(0.5)
                if message is None:
                    continue
                tp = (message.topic(), message.partition())
                if message.error():
                    if message.error().code() == KafkaError._PARTITION_EOF:
                        ended.add(tp)
                        continue
                    raise KafkaException(message.error())
                if tp in todo and message.offset() < todo[tp]:
                    found[tp] = max(found.get(tp, -1), message.offset())
                    if message.offset() >= todo[tp] - 1:
                        ended.add(tp)
            result.update(found)
            for tp in list(todo):
                if tp in found or starts[tp] <= lows[tp]:
                    result.setdefault(tp, -1)
                    del todo[tp]
            back *= 8
    finally:
        consumer.close()
    return result


class CommittedRecovery(Recovery):
    """Faust's table recovery, ending at each changelog's last committed record.

    Faust recovers a changelog partition up to its end offset less one, which it takes for the
    last record.  In a log written in transactions the last offset is a commit marker, which no
    consumer is handed: recovery would wait for it for ever (Faust's own ``exactly_once`` ends
    it only after two idle 5 s polls).
    """

    bootstrap: str = ""

    async def _build_highwaters(
        self, consumer: Any, tps: Any, destination: Any, title: str
    ) -> None:
        await super()._build_highwaters(consumer, tps, destination, title)
        ends = {(tp.topic, tp.partition): value + 1 for tp, value in destination.items()}
        last = await asyncio.to_thread(last_records, self.bootstrap, ends)
        for tp in list(destination):
            destination[tp] = last[(tp.topic, tp.partition)]
        self.log.info(
            "%s changelogs end at their last committed records: %s",
            title,
            {f"{tp.topic}[{tp.partition}]": offset for tp, offset in sorted(destination.items())},
        )


def install_recovery(app: Any, bootstrap: str) -> None:
    """Give ``app`` a :class:`CommittedRecovery` (before it starts)."""
    tables = app.tables
    recovery = CommittedRecovery(app, tables, beacon=tables.beacon)
    recovery.bootstrap = bootstrap
    tables._recovery = recovery
