"""Held attempts whose outcome is overdue released, once a second, and never while the worker
cannot read: its loop stalled, the broker away, or a commit of the output hanging.

While nothing is read, the outcomes held attempts wait for may be sitting in the broker: that
time must not count against them (:meth:`streams.dataclock.DataClock.resume`).  Only a worker
whose tables are whole releases anything, and only on its own partitions.
"""

from __future__ import annotations

import asyncio
import logging
import time

import faust
from faust.types import TP

from parivision import schemas
from parivision.metrics import Metrics
from parivision.settings import Settings
from streams.flow import ShotFlow
from streams.publishing import BatchPublisher

log = logging.getLogger("parivision.stream")

# A timer tick this late means the worker's loop was blocked: it read nothing meanwhile.
STALL_S = 5.0


class OverdueRelease:
    """:meth:`release_overdue` is the app's timer."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        flow: ShotFlow,
        publisher: BatchPublisher,
        metrics: Metrics,
    ) -> None:
        self.app = app
        self.kafka = settings.kafka()
        self.attempts_topic = settings.topic(schemas.ATTEMPTS)
        self.flow = flow
        self.publisher = publisher
        self.output = publisher.output
        self.released = metrics["released"]
        # Since when nothing could be read, and why: the broker did not answer, or a commit of
        # the output (a Kafka transaction) has not returned, the agent waiting for it.
        self.paused: list[tuple[float, str]] = []
        self.last_tick: float | None = None

    def settled(self) -> bool:
        return not self.app.rebalancing and not getattr(self.app, "in_recovery", False)

    def owns(self, partition: int) -> bool:
        return (
            self.settled()
            and TP(self.attempts_topic, partition) in self.app.assignor.assigned_actives()
        )

    async def release_overdue(self) -> None:
        flow, output = self.flow, self.output
        # A worker stalled for a while (its loop blocked, a suspended laptop) read nothing
        # meanwhile: start the data's time again.
        now = time.monotonic()
        stalled, self.last_tick = now - (self.last_tick or now), now
        if stalled > STALL_S:
            log.warning(
                "the worker read nothing for %.0f s; held attempts wait for what is read now",
                stalled,
            )
            flow.data_clock.resume()
        # Only on a worker whose tables are whole: never release another worker's attempts.
        if not self.settled():
            return
        # While the broker is away, or a commit hangs (librdkafka's, after a broker came back),
        # nothing is read, and the outcomes held attempts wait for may be sitting in the broker:
        # that time must not count against them (DataClock.resume).
        why = None
        if output.committing_for() > STALL_S:
            why = f"a commit of the output has not returned in {output.committing_for():.0f} s"
        elif not await asyncio.to_thread(output.reachable):
            why = f"the broker at {self.kafka} does not answer"
        if why is not None:
            if not self.paused:
                self.paused.append((time.monotonic(), why))
                log.warning("%s; nothing is overdue until it does", why)
            return
        if self.paused:
            since, why = self.paused.pop()
            log.info(
                "reading again after %.0f s (%s); held attempts wait for what is read now",
                time.monotonic() - since,
                why,
            )
            flow.data_clock.resume()
        released = flow.expire(self.owns)
        if released:
            self.released.inc(released)
        # A sweep that released nothing may still have changed the tables: their changes go
        # out now, not with whichever batch comes next.
        if released or self.publisher.holding:
            await self.publisher.publish_and_wait()
