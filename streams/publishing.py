"""A micro-batch's results out before the batch is acknowledged: at least once, its records
delivered and then the tables' changes; exactly once, all of it and the offsets read as one Kafka
transaction (:mod:`streams.transactions`).

The order matters: a table change that says an outcome was joined must not reach the broker
before the labelled record it produced, or a kill -9 between the two loses that record
(``tests/integration/test_crash.py`` caught it).  The tables hold their changes
(:meth:`streams.tables.EventPartitionTable.send_changelog`) until the records are delivered, so
the loop stays free meanwhile: a broker that is slow or failing over delays the batch, not the
worker's heartbeats, metrics, timers or stop.
"""

from __future__ import annotations

import asyncio
import logging
import time

import faust
import orjson

from parivision import schemas
from parivision.dlq import dead_letter
from parivision.metrics import Metrics
from parivision.settings import Settings
from streams import transactions
from streams.faults import crash_point
from streams.flow import ShotFlow
from streams.output import Output
from streams.tables import EventPartitionTable
from streams.validate import InvalidRecord

log = logging.getLogger("parivision.stream")


class BatchPublisher:
    """Publishes what :meth:`ShotFlow.finish` returns on ``shots.scored``, and records that
    cannot be processed on ``shots.dlq``, through ``output``; sends the tables' changes after
    them."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        flow: ShotFlow,
        tables: dict[str, EventPartitionTable],
        output: Output,
        metrics: Metrics,
    ) -> None:
        self.app = app
        self.group = settings.stream_group()
        self.scored_topic = settings.topic(schemas.SCORED)
        self.dlq_topic = settings.topic(schemas.DLQ)
        self.exactly_once = settings.processing_guarantee == "exactly_once"
        self.flow = flow
        self.tables = tables
        self.output = output
        self.dead_letters = metrics["dead_letters"]
        self.scored, self.labelled = metrics["scored"], metrics["labelled"]
        self.score_latency = metrics["score_latency"]
        self.batch_seconds = metrics["batch_seconds"]

    @property
    def holding(self) -> bool:
        """Whether a table holds changes not yet sent."""
        return any(table.holding for table in self.tables.values())

    def to_dlq(self, event: faust.types.EventT, error: InvalidRecord, stage: str) -> None:
        """Send ``event``'s record to the dead-letter topic, saying why and where it came from."""
        message = event.message
        reason = str(error)
        self.dead_letters.labels(stage=stage, reason=error.code).inc()
        self.output.send(
            self.dlq_topic,
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

    def publish(self) -> int:
        started = time.perf_counter()
        records = self.flow.finish()
        if records:
            self.batch_seconds.observe(time.perf_counter() - started)
        for key, record in records:
            if record["labelled"]:
                self.labelled.inc()
            else:
                self.scored.inc()
                self.score_latency.observe(record["latency_ms"] / 1000.0)
            self.output.send(self.scored_topic, key, orjson.dumps(record))
        return len(records)

    def group_metadata(self) -> bytes:
        coordinator = self.app.consumer._thread._consumer._coordinator
        return transactions.group_metadata(
            self.group, coordinator.generation, coordinator.member_id
        )

    async def commit_transaction(self) -> None:
        """Exactly once: what the batch produced, the tables' changes and the offsets read,
        as one transaction (:mod:`streams.transactions`)."""
        self.publish()
        output = self.output
        assert isinstance(output, transactions.TransactionalOutput)
        for table in self.tables.values():
            for topic, partition, key, value in table.take_held():
                output.send(topic, key, value, partition)
        await output.commit(self.group_metadata)

    async def publish_and_wait(self) -> None:
        """Send what the batch produced and wait until the broker has all of it: first the
        scored records, then the tables' changes.  The batch is acknowledged (and later
        committed) only when this returns, so a crash repeats a batch, never loses one."""
        if self.exactly_once:
            await self.commit_transaction()
            return
        published = self.publish()
        await self.output.drain()
        if published:
            crash_point("records-delivered")
        # Everything published before the drain began is delivered: every held change, this
        # batch's or the timer's meanwhile, was made before its records were published.
        await self.send_held()

    async def send_held(self) -> None:
        """Send the tables' held changes and wait until the broker has them.

        They go through the same librdkafka producer as the records, not Faust's: Faust's
        Python producer took 16 ms of a batch of a hundred (the loop busy with its futures and
        linger), more than the records and the scoring together.  With an in-memory store Faust
        needs nothing back from a changelog write (it keeps no offsets of its own)."""
        sent = 0
        for table in self.tables.values():
            for topic, partition, key, value in table.take_held():
                self.output.send(topic, key, value, partition)
                sent += 1
        if sent:
            await self.output.drain()

    async def release_held(self) -> None:
        """At a rebalance: a batch cut short may hold table changes; they are written once that
        batch's records are delivered, before the partitions are given up."""
        if self.holding:
            await self.output.drain()
            await self.send_held()

    async def announce_guarantee(self) -> None:
        if isinstance(self.output, transactions.TransactionalOutput):
            log.info(
                "exactly once: one Kafka transaction a batch, as %r", self.output.transactional_id
            )

    async def learn_topics(self) -> None:
        """Look the output topics up before the first batch needs them."""
        await asyncio.to_thread(self.output.learn_topics, (self.scored_topic, self.dlq_topic))
