"""Every offset of the input topics is read, in order, before it is committed.

The shot topics are plain logs: never compacted and never written in transactions, so their
offsets have no gaps and a worker must see each one.  Faust (0.15) can skip some after a rebalance:

- its fetch loop takes a batch of records from aiokafka (whose position then moves past them)
  and drops the rest of the batch when the consumer generation changes or the flow stops; the
  next record of that partition then looks like a *gap*, which Faust takes for compaction and
  marks as acknowledged, so the skipped offsets are committed unread;
- the stream skips events fetched in an older generation, and acknowledges them as it skips;
- after a rebalance it seeks each partition it keeps to its committed offset, but aiokafka
  seeks only where one above 0 is committed: a partition with none stays where the fetcher left
  it, past records fetched in the old generation and never handed on.  When nothing more comes
  to that partition, no gap ever shows: a second worker joining a backlog left 1,050 outcomes of
  one partition unread, and their shots unlabelled, with no error;
- that seek happens while its drain loop still hands on a batch fetched before it, and the
  first of those records follows the committed offset without a gap: handed on, it moves the
  read offset past the committed record, which Faust then drops as already read when the seek
  delivers it again.

After a broker restart a worker lost 229 of 3,000 shots to the first (58 consecutive offsets in
each partition, all in the log).  :func:`guard` wraps the consumer of one app: a record that
comes after a gap sends its partition back to the first offset not read, a partition with no
committed offset goes back to its first record at every seek to the committed offsets, records
fetched before a seek of their partition are not handed on, a fetch that lost its buffer to a
race in aiokafka sends every partition held back to the first offset not handed on, and an
event the stream skipped is not acknowledged.  Reading a few records twice is harmless (the flow
drops copies); reading none of them loses shots.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Collection
from typing import Any

log = logging.getLogger("parivision.stream.offsets")


def gap_after(read: int | None, offset: int) -> bool:
    """Whether ``offset`` skips records after ``read``, Faust's read offset of its partition.

    That is the last offset handed on, or after a seek the next one to read: both allow
    ``read + 1``, and one record reread after a seek is a copy the flow drops anyway.
    """
    return read is not None and offset > read + 1


def guard(consumer: Any, topics: Collection[str], generation: Callable[[], int]) -> None:
    """Make ``consumer`` (a Faust consumer, before it starts) hand on every offset of ``topics``.

    ``generation`` returns the app's consumer generation, which an event must carry to be
    acknowledged.
    """
    topics = frozenset(topics)
    getmany, ack, seek = consumer.getmany, consumer.ack, consumer.seek
    read_offset = consumer._read_offset
    # Per partition: how many seeks so far, and where the last one went.  Records a fetch
    # returns for a partition sought after the fetch began come from before the seek: handing
    # them on moves Faust's read offset past the records the seek is about to deliver again,
    # and Faust then drops those as already read (two workers lost 300-550 attempts that way).
    seeks: dict[Any, int] = {}
    sought: dict[Any, int] = {}

    async def seek_marked(tp: Any, offset: int) -> None:
        seeks[tp] = seeks.get(tp, 0) + 1
        sought[tp] = offset
        await seek(tp, offset)

    async def contiguous(timeout: float) -> AsyncIterator[tuple[Any, Any]]:
        try:
            async for item in _contiguous(timeout):
                yield item
        except KeyError as error:
            # aiokafka's fetcher (in Faust's consumer thread) can lose a partition's buffer to a
            # seek or reassignment made while it drains (`del self._records[tp]`: KeyError); the
            # records it had already taken for other partitions go with it, their position
            # moved past them.  That crashed a worker of `stream --workers 2` in CI.  Read every
            # partition held again from the first offset not handed on: copies are harmless.
            log.warning("a fetch lost its buffer (%r); reading the held partitions again", error)
            await reread_held()

    async def reread_held() -> None:
        try:
            held = set(consumer.assignment())
        except Exception:  # between two assignments: the next one seeks anyway
            return
        for tp in held:
            read = read_offset.get(tp)
            if tp.topic in topics and read is not None:
                await seek_marked(tp, read + 1)

    async def _contiguous(timeout: float) -> AsyncIterator[tuple[Any, Any]]:
        before = dict(seeks)
        again: set = set()
        async for tp, message in getmany(timeout=timeout):
            if tp.topic not in topics:
                yield tp, message
                continue
            if tp in again:
                continue  # read again from where it was sent back
            if seeks.get(tp, 0) != before.get(tp, 0):
                # Fetched before a seek (or, if the fetch raced it, after: either way the seek's
                # own position is read from again).
                again.add(tp)
                await seek_marked(tp, sought[tp])
                continue
            read = read_offset.get(tp)
            # The read offset itself again too: after a seek it is the next to read.
            back_to = read
            if read is None and message.offset > 0:
                # Nothing read yet (no committed offset, or one of 0: Faust keeps no read
                # offset then), so the first record must be the log's first, or Faust
                # commits past the ones before it unread: a second worker joining a replay
                # in flight lost the first 1,350 attempts of a partition that way.
                back_to = (await consumer.earliest_offsets(tp)).get(tp, 0)
                read = back_to - 1
            if gap_after(read, message.offset):
                log.warning(
                    "%s[%d]: offsets %d..%d were fetched but never handed on; reading them again",
                    tp.topic,
                    tp.partition,
                    read + 1,
                    message.offset - 1,
                )
                again.add(tp)
                await seek_marked(tp, back_to)
                continue
            yield tp, message

    def ack_current(message: Any) -> bool:
        if message.topic in topics and message.generation_id != generation():
            # Skipped by the stream, not processed: the seek after the rebalance reads it again.
            return False
        return ack(message)

    seek_to_committed = consumer.seek_to_committed

    async def seek_to_committed_or_first() -> Any:
        committed = await seek_to_committed()
        fresh = []
        for tp, offset in committed.items():
            if tp.topic not in topics:
                continue
            if offset is not None and offset > 0:
                seeks[tp] = seeks.get(tp, 0) + 1  # aiokafka has sought it
                sought[tp] = offset
            else:
                fresh.append(tp)
        if fresh:
            for tp, first in (await consumer.earliest_offsets(*fresh)).items():
                await seek_marked(tp, first or 0)
        return committed

    consumer.getmany = contiguous
    consumer.ack = ack_current
    consumer.seek = seek_marked
    consumer.seek_to_committed = seek_to_committed_or_first
