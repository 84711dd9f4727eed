"""The sink runner while its database is away: it retries a failed flush with growing delays,
keeps the records, and commits to Kafka only what a flush has written."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from confluent_kafka import TopicPartition
from pymongo.errors import AutoReconnect, ServerSelectionTimeoutError

from consumers import runner
from consumers.base import Sink
from parivision import schemas
from parivision.settings import Settings


class Stop(threading.Event):
    """A stop event whose waits return at once, recording how long the runner asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return self.is_set()


class Counter:
    def __init__(self) -> None:
        self.value = 0

    def inc(self, amount: int = 1) -> None:
        self.value += amount


class FlakySink(Sink):
    """An in-memory store that is down for its first ``failures`` flushes."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or ServerSelectionTimeoutError("127.0.0.1:27027: Connection refused")
        self.buffer: list[dict[str, Any]] = []
        self.stored: list[dict[str, Any]] = []
        self.flushes = 0

    def add(self, topic: str, key: bytes | None, value: dict[str, Any], position=None) -> None:
        self.buffer.append(value)

    def pending(self) -> int:
        return len(self.buffer)

    def flush(self) -> int:
        self.flushes += 1
        if self.failures:
            self.failures -= 1
            raise self.error
        written, self.stored, self.buffer = len(self.buffer), self.stored + self.buffer, []
        return written


def test_a_failed_flush_is_retried_with_doubling_delays_and_keeps_its_records():
    sink, stop, errors = FlakySink(failures=8), Stop(), Counter()
    sink.add("t", None, {"shot_id": "a"})
    written = runner._flush_with_retry(sink, stop, "MongoDB", metrics={"write_errors": errors})
    assert written == 1 and sink.stored == [{"shot_id": "a"}]
    assert stop.waits == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]  # capped at 10 s
    assert errors.value == 8 and sink.flushes == 9


@pytest.mark.parametrize("error", [ServerSelectionTimeoutError("gone"), AutoReconnect("closed")])
def test_stop_during_an_outage_gives_up_without_writing(error):
    sink, stop = FlakySink(failures=100, error=error), Stop()
    sink.add("t", None, {"shot_id": "a"})
    stop.set()
    assert runner._flush_with_retry(sink, stop, "MongoDB") is None
    assert sink.flushes == 1 and sink.pending() == 1 and not sink.stored


def test_a_bounded_retry_gives_up_after_its_attempts():
    sink, stop = FlakySink(failures=100), Stop()
    sink.add("t", None, {"shot_id": "a"})
    assert runner._flush_with_retry(sink, stop, "MongoDB", attempts=3) is None
    assert sink.flushes == 3 and stop.waits == [0.5, 1.0]


class Message:
    def __init__(self, topic: str, value: dict[str, Any], offset: int = 0) -> None:
        self._topic, self._value, self._offset = topic, json.dumps(value).encode(), offset

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def error(self):
        return None

    def topic(self) -> str:
        return self._topic

    def key(self) -> bytes | None:
        return None

    def value(self) -> bytes:
        return self._value


class FakeConsumer:
    """Hands out ``messages`` in batches; a commit records how many it had handed out."""

    def __init__(self, messages: list[Message], sink: FlakySink, stop: Stop) -> None:
        self.messages, self.sink, self.stop = messages, sink, stop
        self.read = 0
        self.commits: list[tuple[int, int]] = []  # (records read, records stored) at a commit
        self.committed: list[int] = []  # the offset each commit committed
        self.closed = False

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        batch = self.messages[self.read : self.read + num_messages]
        self.read += len(batch)
        if not batch and not self.sink.pending():
            self.stop.set()  # everything read and written: the test is over
        return batch

    def commit(self, offsets=None, asynchronous: bool = True) -> None:
        self.commits.append((self.read, len(self.sink.stored)))
        self.committed.append(self.read if offsets is None else offsets[0].offset)

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(self.messages[0].topic(), 0)]

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self.read) for tp in partitions]

    def close(self) -> None:
        self.closed = True


def _run(monkeypatch, sink: FlakySink, stop: Stop, shots: int) -> tuple[int, FakeConsumer]:
    settings = Settings(sink_batch_size=5, sink_flush_s=0.0, topic_prefix="u.")
    attempts = settings.topic(schemas.ATTEMPTS)
    messages = [Message(attempts, {"shot_id": f"s{n}"}, offset=n) for n in range(shots)]
    consumer = FakeConsumer(messages, sink, stop)
    monkeypatch.setattr(runner, "sink_consumer", lambda settings: consumer)
    metrics = {"write_errors": Counter(), "lag": None}
    total = runner.run_sink(settings, sink, stop=stop, metrics=metrics)
    return total, consumer


def test_the_runner_commits_only_what_was_written_through_an_outage(monkeypatch):
    sink, stop = FlakySink(failures=4), Stop()
    total, consumer = _run(monkeypatch, sink, stop, shots=12)
    assert total == 12 and [s["shot_id"] for s in sink.stored] == [f"s{n}" for n in range(12)]
    assert consumer.commits, "nothing was committed"
    # Every commit came after a flush had written everything read so far.
    assert all(read == stored for read, stored in consumer.commits), consumer.commits
    assert consumer.commits[-1] == (12, 12)
    assert stop.waits[:4] == [0.5, 1.0, 2.0, 4.0]
    assert consumer.closed


def test_a_sink_stopped_while_its_database_is_away_commits_nothing(monkeypatch):
    sink, stop = FlakySink(failures=1000), Stop()
    # The operator stops the sink in the middle of the outage.
    sink_flush = sink.flush

    def flush() -> int:
        if sink.flushes == 5:
            stop.set()
        return sink_flush()

    sink.flush = flush
    total, consumer = _run(monkeypatch, sink, stop, shots=12)
    assert total == 0 and not sink.stored
    assert consumer.commits == [] and consumer.closed


class HoldingSink(FlakySink):
    """Holds back the records marked ``wait`` until it is released, as the MongoDB sink holds
    a prediction until its outcome comes."""

    def __init__(self) -> None:
        super().__init__(failures=0)
        self.held: list[tuple[dict[str, Any], int]] = []

    def add(self, topic: str, key: bytes | None, value: dict[str, Any], position=None) -> None:
        if value.get("wait"):
            self.held.append((value, position[2]))
        else:
            self.buffer.append(value)

    def holding(self) -> dict[tuple[str, int], int]:
        return {("u.shots.attempts", 0): min(o for _, o in self.held)} if self.held else {}

    def release(self) -> None:
        self.buffer += [value for value, _ in self.held]
        self.held = []


def test_the_runner_never_commits_past_a_record_the_sink_holds(monkeypatch):
    sink, stop = HoldingSink(), Stop()
    settings = Settings(sink_batch_size=5, sink_flush_s=0.0, topic_prefix="u.")
    attempts = settings.topic(schemas.ATTEMPTS)
    messages = [
        Message(attempts, {"shot_id": f"s{n}", "wait": n == 7}, offset=n) for n in range(20)
    ]
    consumer = FakeConsumer(messages, sink, stop)
    monkeypatch.setattr(runner, "sink_consumer", lambda settings: consumer)
    metrics = {"write_errors": Counter(), "lag": None}
    total = runner.run_sink(settings, sink, stop=stop, metrics=metrics)
    # Offset 7 is held from the second batch on: no commit goes past it until the sink stops
    # and writes it.
    assert consumer.committed[0] == 5
    assert set(consumer.committed[1:-1]) == {7}, consumer.committed
    assert consumer.committed[-1] == 20 and total == 19
    assert {s["shot_id"] for s in sink.stored} == {f"s{n}" for n in range(20)}
