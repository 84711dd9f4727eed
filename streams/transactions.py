"""Exactly once (``processing_guarantee = "exactly_once"``): one Kafka transaction a batch.

At least once, a worker killed between publishing a batch's scored records and committing its
input offsets scores that batch again when it restarts: the store keeps one copy, but a reader
of ``shots.scored`` sees two.  Exactly once, everything a batch changes goes out as one Kafka
transaction: its scored and dead-letter records, the tables' changes (written to Faust's
changelogs in Faust's own encoding) and the input offsets it consumed.  A ``read_committed``
reader (the sink, the API's feed, librdkafka's default) sees all of it or none of it.

How the pieces fit Faust (0.15), which has an ``exactly_once`` guarantee of its own: a
transactional aiokafka producer for each partition, committed every ``commit_interval``
(2.8 s), so every scored record would wait that long.  Instead:

- :class:`TransactionalOutput` is the worker's librdkafka producer with a ``transactional.id``.
  Records are buffered and produced, with the tables' changes and the offsets, in one
  transaction a batch, in a thread: the event loop stays free while it commits.
- The offsets are committed in the transaction against the Faust consumer's own group
  generation and member id (:func:`group_metadata`): a worker that lost its partitions to a
  rebalance it missed (a zombie) has its commit refused by the broker (KIP-447), and Faust's
  own offset commits are turned off.
- Faust's consumer reads ``read_committed``: table recovery never sees an aborted change.
  Faust takes a changelog's end (less one) as the last record to recover, but a transactional
  log ends in a commit marker no consumer is handed, so recovery would never end:
  :class:`streams.committed.CommittedRecovery` finds the last committed record of each
  changelog instead.
- Each worker process holds a slot (:func:`streams.slots.claim_slot`), so a restarted worker
  has the same ``transactional.id`` as the one that died: its start aborts what that one left
  open, at once rather than after :data:`TRANSACTION_TIMEOUT_S`.

A transaction that cannot be committed leaves the worker's tables ahead of what Kafka holds
(the group moved on while a broker was away, a transaction stuck): the worker restarts in place
(:func:`streams.restart.restart_in_place`), recovers the committed state and reads the batch again.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from streams.faults import crash_point, crash_point_set
from streams.output import Output
from streams.restart import restart_in_place

log = logging.getLogger("parivision.stream.transactions")

# A transaction the broker aborts if it is not committed within this long (the worker's batch
# takes milliseconds; a leader moving to another broker about ten seconds).  Also how long a
# transaction left open by a worker that died and is not restarted holds back read_committed
# readers of the partitions it wrote.
TRANSACTION_TIMEOUT_S = 60.0
# How long a transaction may keep failing for reasons that may pass (a broker restarting).
RETRY_FOR_S = 300.0
# A commit still not finished this long after it began is stuck: the worker restarts
# (restart_in_place).
STUCK_AFTER_S = RETRY_FOR_S + 2 * TRANSACTION_TIMEOUT_S
# Each transaction call's own timeout: one that times out is tried again (the error is
# retriable), so this only bounds how long a call may block (a leader moving takes 10-25 s).
CALL_TIMEOUT_S = 20.0
# One librdkafka call still running this long after it was given CALL_TIMEOUT_S has hung: the
# worker restarts.  send_offsets_to_transaction waited without end here after the broker
# holding the group's coordinator was killed (4 broker restarts in 6), a known librdkafka bug
# (confluentinc/librdkafka#5456: the coordinator request's timeout is never checked; #5511:
# a coordinator whose broker went away is not looked up again), open in 2.16.
HUNG_AFTER_S = CALL_TIMEOUT_S + 20
# How often the commit's watchdog looks.
WATCH_EVERY_S = 5.0


# Errors that mean the group has moved on without this worker: its partitions may be someone
# else's now, so what it holds must not be committed.  (A producer fenced or with a stale epoch
# is not one of them: the slot makes this process the only holder of its transactional.id, and
# the broker bumps the epoch itself when it aborts a transaction that outlived its timeout, as
# a broker away for longer does.  A new producer goes on from there.)
_GROUP_MOVED_ON = {
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError.FENCED_INSTANCE_ID,
}


class TransactionFailed(Exception):
    """The batch's transaction was aborted and must not be retried by this worker."""


def group_metadata(group: str, generation: int, member_id: str) -> bytes:
    """The consumer group metadata librdkafka's ``send_offsets_to_transaction`` takes.

    librdkafka (2.x) serialises a consumer's ``consumer_group_metadata()`` as ``CGMDv2:``, the
    generation (a native int32), the group id and the member id each ended by a NUL, and a flag
    for "no group instance id".  Built here from the Faust (aiokafka) consumer's generation and
    member id, the broker fences this worker's commits exactly as a Java consumer's would.
    """
    return (
        b"CGMDv2:"
        + struct.pack("=i", generation)
        + group.encode()
        + b"\0"
        + member_id.encode()
        + b"\0"
        + b"\x01"
    )


class TransactionalOutput(Output):
    """The worker's output as one transaction a batch: :meth:`send` buffers, :meth:`commit`
    produces the buffered records and the consumed offsets in one transaction."""

    def __init__(self, bootstrap: str, transactional_id: str) -> None:
        timeout_ms = int(TRANSACTION_TIMEOUT_S * 1000)
        super().__init__(
            bootstrap,
            config={
                "transactional.id": transactional_id,
                "transaction.timeout.ms": timeout_ms,
                # A record not delivered within its transaction's time fails the transaction.
                "message.timeout.ms": timeout_ms,
            },
        )
        self.transactional_id = transactional_id
        self._records: list[tuple[str, bytes | None, bytes | None, int | None]] = []
        self._offsets: dict[tuple[str, int], int] = {}
        self._committing: asyncio.Future | None = None
        self._committing_since = 0.0
        self._watchdog: asyncio.Task | None = None
        # The librdkafka call the committing thread is in, and when it began (the watchdog's).
        self._call: tuple[str, float] | None = None
        self.committed = 0  # transactions committed

    def start(self, timeout: float = 60.0) -> None:
        """Register the ``transactional.id`` with the broker (blocking: before the worker
        starts).  A transaction the previous holder of this id left open is aborted here, and
        that holder, if it still runs, is fenced off."""
        try:
            self.producer.init_transactions(timeout)
        except KafkaException as error:
            raise KafkaException(
                f"could not start Kafka transactions as {self.transactional_id!r} at "
                f"{self.bootstrap}: {error.args[0]}"
            ) from None

    def send(
        self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None
    ) -> None:
        self._records.append((topic, key, value, partition))

    def consumed(self, topic: str, partition: int, offset: int) -> None:
        """Record ``offset`` of ``topic[partition]`` as processed: it is committed with the
        next transaction."""
        tp = (topic, partition)
        if offset + 1 > self._offsets.get(tp, -1):
            self._offsets[tp] = offset + 1

    @property
    def pending(self) -> bool:
        return bool(self._records or self._offsets)

    async def commit(self, metadata: Callable[[], bytes]) -> None:
        """Commit everything sent and consumed so far as one transaction (after the one
        before it, if it is still committing).  The loop is free meanwhile.

        A transaction that fails for good restarts the worker (:func:`restart_in_place`), even
        when nobody waits for it any more (a rebalance cancelled the agent that did)."""
        while self._committing is not None:
            # Shielded: a rebalance may cancel the agent that waits, not the commit.
            await asyncio.shield(self._committing)
        if not self.pending:
            return
        records, self._records = self._records, []
        offsets, self._offsets = self._offsets, {}
        future = asyncio.get_running_loop().run_in_executor(
            None, self._commit, records, offsets, metadata
        )
        self._committing, self._committing_since = future, time.monotonic()
        self._watchdog = asyncio.ensure_future(self._watch(future))
        future.add_done_callback(self._done)
        await asyncio.shield(future)

    async def _watch(self, future: asyncio.Future) -> None:
        """Restart the worker when ``future``'s commit has hung: one librdkafka call past
        :data:`HUNG_AFTER_S`, or the whole commit past :data:`STUCK_AFTER_S`.  The thread that
        hung cannot be stopped, and its producer cannot be used again."""
        began = time.monotonic()
        while not future.done():
            await asyncio.wait([future], timeout=WATCH_EVERY_S)
            if future.done():
                return
            now = time.monotonic()
            call = self._call
            if call is not None and now - call[1] > HUNG_AFTER_S:
                restart_in_place(
                    f"librdkafka's {call[0]} has not returned in {now - call[1]:.0f} s, "
                    f"past its {CALL_TIMEOUT_S:.0f} s timeout",
                    once_reachable=self.bootstrap,
                )
            if now - began > STUCK_AFTER_S:
                restart_in_place(
                    f"a Kafka transaction did not finish in {STUCK_AFTER_S:.0f} s",
                    once_reachable=self.bootstrap,
                )

    def committing_for(self) -> float:
        """How long the transaction now committing has taken (0: none is); the agent that
        waits for it reads nothing meanwhile."""
        if self._committing is None:
            return 0.0
        return time.monotonic() - self._committing_since

    def _done(self, future: asyncio.Future) -> None:
        if self._committing is future:
            self._committing = None
        if not future.cancelled() and future.exception() is not None:
            restart_in_place(
                f"its Kafka transaction could not be committed: {future.exception()}",
                once_reachable=self.bootstrap,
            )

    async def drain(self, timeout: float = 0) -> None:
        """Nothing to drain: a transaction is delivered when it commits."""
        while self._committing is not None:
            await asyncio.shield(self._committing)

    def _commit(
        self,
        records: list[tuple[str, bytes | None, bytes | None, int | None]],
        offsets: dict[tuple[str, int], int],
        metadata: Callable[[], bytes],
    ) -> None:
        """One transaction of ``records`` and ``offsets``, sent again (in a new transaction)
        while it fails for reasons that pass, for up to :data:`RETRY_FOR_S`."""
        deadline = time.monotonic() + RETRY_FOR_S
        positions = [TopicPartition(topic, p, offset) for (topic, p), offset in offsets.items()]
        while True:
            try:
                self._transaction(records, positions, metadata, deadline)
                self.committed += 1
                return
            except KafkaException as raised:
                error: KafkaError = raised.args[0]
                if error.code() in _GROUP_MOVED_ON:
                    message = f"the group moved on without this worker: {error}"
                    raise TransactionFailed(message) from None
                if time.monotonic() > deadline:
                    message = f"still failing after {RETRY_FOR_S:.0f} s: {error}"
                    raise TransactionFailed(message) from None
                if error.txn_requires_abort() and not error.fatal():
                    try:
                        self._retrying(
                            "abort_transaction",
                            lambda: self.producer.abort_transaction(CALL_TIMEOUT_S),
                            deadline,
                        )
                        log.warning("transaction aborted (%s); sending the batch again", error)
                        continue
                    except KafkaException as abort_failed:
                        error = abort_failed.args[0]
                log.warning(
                    "the transactional producer failed (%s); a new one sends the batch again",
                    error,
                )
                self._renew(deadline)

    def _transaction(
        self,
        records: list[tuple[str, bytes | None, bytes | None, int | None]],
        positions: list[TopicPartition],
        metadata: Callable[[], bytes],
        deadline: float,
    ) -> None:
        producer = self.producer
        producer.begin_transaction()
        for topic, key, value, partition in records:
            self._produce(topic, key, value, partition)
        if positions:
            self._retrying(
                "send_offsets_to_transaction",
                lambda: producer.send_offsets_to_transaction(positions, metadata(), CALL_TIMEOUT_S),
                deadline,
            )
        if records and crash_point_set():
            producer.flush(TRANSACTION_TIMEOUT_S)  # the records in the log, uncommitted
            crash_point("records-delivered")
        self._retrying(
            "commit_transaction",
            lambda: producer.commit_transaction(CALL_TIMEOUT_S),
            deadline,
        )

    def _renew(self, deadline: float) -> None:
        """Replace a producer in a state it cannot leave (a fatal error) by a new one with the
        same transactional.id: starting, it aborts whatever the old one left open."""
        old, self._producer = self._producer, None
        if old is not None:
            old.purge()
            del old
        self._retrying(
            "init_transactions",
            lambda: self.producer.init_transactions(CALL_TIMEOUT_S),
            deadline,
        )

    def _produce(self, topic: str, key: Any, value: Any, partition: int | None) -> None:
        producer = self.producer
        while True:
            try:
                # Delivery is the transaction's: a record that fails fails its commit.
                if partition is None:
                    producer.produce(topic, value=value, key=key)
                else:
                    producer.produce(topic, value=value, key=key, partition=partition)
                return
            except BufferError:
                producer.poll(0.01)

    def _retrying(self, name: str, call: Callable[[], None], deadline: float) -> None:
        """``call`` (librdkafka's ``name``) again while it fails with an error librdkafka says
        may pass.  The watchdog sees which call runs, since when."""
        while True:
            self._call = (name, time.monotonic())
            try:
                call()
                return
            except KafkaException as raised:
                error: KafkaError = raised.args[0]
                if not error.retriable() or time.monotonic() > deadline:
                    raise
                log.warning("Kafka transaction step %s failed (%s); trying again", name, error)
            finally:
                self._call = None
