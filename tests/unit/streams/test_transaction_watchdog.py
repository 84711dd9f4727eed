"""The exactly-once commit's watchdog, against a producer whose call hangs on demand.

A fake producer, because librdkafka's hang (send_offsets_to_transaction never returning after
the group coordinator's broker died, confluentinc/librdkafka#5456) cannot be produced on demand;
the real case is tests/integration/test_broker_restart.py's exactly-once variant.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from streams import transactions
from streams.transactions import TransactionalOutput


class Producer:
    """Transactions that always succeed, except that ``send_offsets_to_transaction`` takes
    ``offsets_take`` seconds, or until ``release`` is set."""

    def __init__(self, offsets_take: float) -> None:
        self.offsets_take = offsets_take
        self.release = threading.Event()
        self.committed = 0

    def begin_transaction(self) -> None:
        pass

    def produce(self, topic, value=None, key=None, partition=None) -> None:
        pass

    def send_offsets_to_transaction(self, positions, metadata, timeout) -> None:
        self.release.wait(self.offsets_take)

    def commit_transaction(self, timeout) -> None:
        self.committed += 1


@pytest.fixture
def restarts(monkeypatch):
    """Why the worker was restarted, each time; the hung call is let go, as the exec would."""
    seen: list[str] = []
    monkeypatch.setattr(transactions, "HUNG_AFTER_S", 2.0)
    monkeypatch.setattr(transactions, "WATCH_EVERY_S", 0.05)

    def restart(why: str, *, once_reachable: str | None = None) -> None:
        assert once_reachable == "127.0.0.1:1"  # it waits for the worker's broker first
        seen.append(why)
        restart.producer.release.set()

    monkeypatch.setattr(transactions, "restart_in_place", restart)
    return seen, restart


def commit_with(producer: Producer, restart) -> TransactionalOutput:
    output = TransactionalOutput("127.0.0.1:1", "watchdog-test")
    output._producer = producer
    restart.producer = producer
    output.send("shots.scored", b"k", b"v")
    output.consumed("shots.attempts", 0, 41)

    async def commit() -> None:
        await output.commit(lambda: b"")

    asyncio.run(commit())
    return output


def test_a_call_that_hangs_past_its_timeout_restarts_the_worker_and_names_the_call(restarts):
    seen, restart = restarts
    producer = Producer(offsets_take=60)
    began = time.monotonic()
    commit_with(producer, restart)
    assert len(seen) == 1, seen
    assert "send_offsets_to_transaction" in seen[0]
    # Found by the watchdog, not by the call giving up on its own.
    assert time.monotonic() - began < 30


def test_a_slow_call_that_returns_in_time_restarts_nothing(restarts):
    seen, restart = restarts
    producer = Producer(offsets_take=0.2)
    output = commit_with(producer, restart)
    assert seen == []
    assert producer.committed == 1
    assert output.committed == 1
    assert not output.pending


def test_how_long_a_commit_has_taken_is_known_while_it_hangs_and_zero_after(restarts):
    """The worker's overdue sweep reads this: while a commit hangs the agent reads nothing, so
    that time must not count against attempts waiting for their outcomes."""
    seen, restart = restarts
    producer = Producer(offsets_take=60)
    output = TransactionalOutput("127.0.0.1:1", "watchdog-test")
    output._producer = producer
    restart.producer = producer
    output.send("shots.scored", b"k", b"v")
    output.consumed("shots.attempts", 0, 41)
    assert output.committing_for() == 0.0
    waited: list[float] = []

    async def commit_and_look() -> None:
        committing = asyncio.ensure_future(output.commit(lambda: b""))
        while not waited or waited[-1] < 1.0:  # the commit hangs in the producer's call
            await asyncio.sleep(0.05)
            waited.append(output.committing_for())
        await committing

    asyncio.run(commit_and_look())
    assert waited[-1] >= 1.0 and waited == sorted(waited)
    assert output.committing_for() == 0.0  # let go (by the watchdog here), so done
    assert len(seen) == 1
