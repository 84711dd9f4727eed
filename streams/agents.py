"""The agent that reads both input topics: each micro-batch validated, handed to the flow in
order and published, and the flow told of each rebalance.

Both input topics are keyed by player id and have the same partition count, and one agent reads
both, so a player's attempts and outcomes all come to the same worker, in order per topic, where
:class:`streams.flow.ShotFlow` keeps the player's form and holds an attempt until the outcomes of
the player's earlier shots are in.
"""

from __future__ import annotations

import logging
from typing import Any

import faust

from parivision import schemas
from parivision.metrics import Metrics
from parivision.settings import Settings
from streams.batches import BatchTaker
from streams.flow import ShotFlow
from streams.publishing import BatchPublisher
from streams.validate import InvalidRecord, parse_attempt, parse_outcome

log = logging.getLogger("parivision.stream")


class ShotAgent:
    """:meth:`score_shots` is the Faust agent; :meth:`on_revoked` and :meth:`on_assigned` are
    connected to the app's rebalance signals."""

    def __init__(
        self,
        settings: Settings,
        flow: ShotFlow,
        publisher: BatchPublisher,
        metrics: Metrics,
    ) -> None:
        self.batch_size = settings.batch_size
        self.batch_within_s = settings.batch_within_s
        self.attempts_topic = settings.topic(schemas.ATTEMPTS)
        self.flow = flow
        self.publisher = publisher
        self.output = publisher.output
        self.exactly_once = publisher.exactly_once
        self.consumed_attempts = metrics["consumed"].labels(kind="attempt")
        self.consumed_outcomes = metrics["consumed"].labels(kind="outcome")
        self.taker: BatchTaker | None = None  # the agent's, once it runs

    async def score_shots(self, stream: faust.StreamT) -> None:
        flow, to_dlq, attempts_topic = self.flow, self.publisher.to_dlq, self.attempts_topic
        self.taker = BatchTaker(stream, self.batch_size, self.batch_within_s)
        async for events in self.taker.batches():
            attempts = 0
            for event in events:
                message = event.message
                if self.exactly_once:
                    self.output.consumed(message.topic, message.partition, message.offset)
                is_attempt = message.topic == attempts_topic
                attempts += is_attempt
                try:
                    record = (parse_attempt if is_attempt else parse_outcome)(event.value)
                except InvalidRecord as error:
                    stage = "validate-attempt" if is_attempt else "validate-outcome"
                    to_dlq(event, error, stage)
                    continue
                # The record's Kafka timestamp: held attempts are overdue by the data's time.
                try:
                    if is_attempt:
                        flow.attempt(record, message.key, message.partition, message.timestamp)
                    else:
                        flow.outcome(record, message.key, message.partition, message.timestamp)
                except Exception as error:
                    # A crashed agent would lose its whole batch (Faust acks it as it unwinds):
                    # one record the flow cannot handle goes to the DLQ with why, the rest on.
                    log.exception(
                        "could not process %s at offset %s", message.topic, message.offset
                    )
                    reason = f"processing failed: {type(error).__name__}: {error}"
                    stage = "process-attempt" if is_attempt else "process-outcome"
                    to_dlq(event, InvalidRecord(reason, "processing_error"), stage)
            self.consumed_attempts.inc(attempts)
            self.consumed_outcomes.inc(len(events) - attempts)
            await self.publisher.publish_and_wait()

    async def on_revoked(self, app: faust.App, revoked: Any, **kwargs: Any) -> None:
        if self.taker is not None:
            # Taken in, not yet handed out: the partitions' new owner reads them again.
            dropped = self.taker.discard(set(revoked))
            if dropped:
                log.info("rebalance: %d events of partitions given up left unprocessed", dropped)
        if self.exactly_once:
            # Still in the old generation: what was read so far is committed before another
            # worker can take these partitions.
            await self.publisher.commit_transaction()
        self.flow.forget_waiting()
        await self.publisher.release_held()

    async def on_assigned(self, app: faust.App, assigned: Any, **kwargs: Any) -> None:
        # A partition taken over from a worker that died: its held attempts are overdue by
        # the data read from here on, not by the time the rebalance took.
        self.flow.assigned({tp.partition for tp in assigned if tp.topic == self.attempts_topic})
