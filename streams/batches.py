"""Micro-batches that fill while the last one is being published.

Faust's ``Stream.take_events`` stops filling its buffer while the agent works on the batch it
handed out, and only then waits ``within`` for the next one.  Handing an event on costs Faust
about 0.1 ms of Python here, so from a backlog a batch held what it could hand on in those 5 ms:
about 50 events, not 500.  Each batch then waited for two round trips to the broker (its records,
then its table changes: 14 ms), with the event loop free and nothing to do.  Measured on 20,000
real shots from a backlog, the worker spent 70% of its time in those waits, 70 batches of 50
events every 2 s (``bench/compare.py --only raw,worker``: 0.26 of the raw loop).

:class:`BatchTaker` keeps filling the next batch while the agent processes and publishes the
last, so the waits overlap with Faust's hand-on.  A batch is handed out when it has ``max_``
events, or when its first event has waited ``within``; after a long publish that is at once,
with everything that arrived meanwhile.  At a low rate nothing changes: an event waits at most
``within`` for others to join it.  An idle stream no longer wakes every ``within`` either.

Acknowledgement is Faust's: a batch's events are acknowledged when the agent asks for the next
batch (or unwinds), never before, so a crash repeats a batch and never loses one.  Events
taken in while the agent worked on the last batch belong to the next and are acknowledged with
it.

At a rebalance Faust empties its buffers of what it fetched; the events already taken in here
are Faust's no longer either, so :meth:`BatchTaker.discard` drops those of the partitions given
up: the worker that takes a partition over reads them again from its committed offset, and this
one must not process (or, exactly once, commit) what it no longer owns.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import faust


class BatchTaker:
    """Like ``stream.take_events(max_, within)``: :meth:`batches` yields lists of at most
    ``max_`` events, each acknowledged once the caller asks for the next list; but the next
    list fills while the caller works on the last one, and ``within`` counts from the first
    event of a list."""

    def __init__(self, stream: faust.StreamT, max_: int, within: float) -> None:
        self.stream, self.max_, self.within = stream, max_, within
        self.pending: list[faust.types.EventT] = []
        self.arrived = asyncio.Event()  # pending is no longer empty
        self.full = asyncio.Event()  # pending holds max_ events
        self.room = asyncio.Event()  # pending has room again
        self.first_at = 0.0

    def discard(self, partitions: set[Any]) -> int:
        """Drop the events taken in but not handed out of ``partitions`` (Faust ``TP``s, at a
        rebalance: given up); return how many."""
        kept = [event for event in self.pending if event.message.tp not in partitions]
        dropped = len(self.pending) - len(kept)
        self.pending[:] = kept
        if len(kept) < self.max_:
            self.full.clear()
            self.room.set()
        return dropped

    async def _take_in(self, value: Any) -> Any:
        stream, pending = self.stream, self.pending
        try:
            while len(pending) >= self.max_ and not stream.should_stop:
                self.room.clear()
                await stream.wait(self.room)
            event = stream.current_event
            if event is None:
                raise RuntimeError("take_batches found current_event is None")
            if not pending:
                self.first_at = asyncio.get_running_loop().time()
                self.arrived.set()
            pending.append(event)
            if len(pending) >= self.max_:
                self.full.set()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            stream.log.exception("Error adding to take buffer: %r", error)
            await stream.crash(error)
        return value

    async def batches(self) -> AsyncIterator[list[faust.types.EventT]]:
        stream, pending = self.stream, self.pending
        loop = asyncio.get_running_loop()
        # The events are acknowledged here, once their batch is done with.
        stream.enable_acks = False
        stream.add_processor(self._take_in)
        # As take_events: the stream is drained in the background.
        stream._enable_passive(stream.channel.__aiter__())
        while not stream.should_stop:
            if not pending:
                self.arrived.clear()
                await stream.wait(self.arrived)
                continue  # stopped, or the first event is in: look again
            left = self.within - (loop.time() - self.first_at)
            if len(pending) < self.max_ and left > 0:
                self.full.clear()
                await stream.wait(self.full, timeout=left)  # returns on a timeout too
                if stream.should_stop or not pending:
                    continue
            batch = pending[:]
            pending.clear()
            self.full.clear()
            self.room.set()
            try:
                yield batch
            finally:
                for event in batch:
                    await stream.ack(event)


def take_batches(
    stream: faust.StreamT, max_: int, within: float
) -> AsyncIterator[list[faust.types.EventT]]:
    """:meth:`BatchTaker.batches` of a new :class:`BatchTaker`."""
    return BatchTaker(stream, max_, within).batches()
