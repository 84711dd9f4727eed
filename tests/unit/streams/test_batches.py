"""streams.batches against a stream shaped like Faust's (its processors, ``wait`` and acks); the
worker's integration tests (pipeline, crash, restart, scaling, exactly once) run it on the real
broker."""

from __future__ import annotations

import asyncio
import logging

from streams.batches import BatchTaker, take_batches


class Stream:
    """What take_batches uses of a Faust stream.  ``hand_on(value)`` is Faust's background
    drainer handing one event to the processors, as it does for each record it reads."""

    def __init__(self) -> None:
        self.processors: list = []
        self.acked: list[int] = []
        self.current_event = None
        self.enable_acks = True
        self.stopped = asyncio.Event()
        self.log = logging.getLogger("test")
        self.channel = self

    @property
    def should_stop(self) -> bool:
        return self.stopped.is_set()

    def __aiter__(self):
        return self

    def add_processor(self, processor) -> None:
        self.processors.append(processor)

    def _enable_passive(self, channel) -> None:
        pass

    async def wait(self, event: asyncio.Event, timeout: float | None = None) -> None:
        waiters = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(self.stopped.wait())]
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()

    async def ack(self, event: int) -> None:
        self.acked.append(event)

    async def crash(self, error: BaseException) -> None:
        raise error

    async def hand_on(self, value: int) -> None:
        self.current_event = value
        for processor in self.processors:
            await processor(value)


async def _started(stream: Stream, max_: int, within: float):
    batches = take_batches(stream, max_, within)
    first = asyncio.ensure_future(batches.__anext__())
    await asyncio.sleep(0)  # take_batches has added its processor
    return batches, first


def test_the_next_batch_fills_while_the_last_one_is_worked_on_and_is_acked_only_after():
    async def run() -> tuple[list, list, list]:
        stream = Stream()
        batches, first = await _started(stream, max_=100, within=0.5)
        for value in range(3):
            await stream.hand_on(value)
        batch = await first
        # The agent works on [0, 1, 2] and publishes them, which takes longer than `within`;
        # its loop is free meanwhile, and more records arrive.  (With Faust's take_events,
        # handing on 3 would wait until the agent asks for the next batch.)
        for value in range(3, 10):
            await stream.hand_on(value)
        await asyncio.sleep(0.6)
        acked_while_working = list(stream.acked)
        started = asyncio.get_running_loop().time()
        second = await batches.__anext__()
        waited = asyncio.get_running_loop().time() - started
        stream.stopped.set()
        await batches.aclose()
        return [batch, second, acked_while_working, stream.acked, waited]

    batch, second, acked_while_working, acked, waited = asyncio.run(run())
    assert batch == [0, 1, 2]
    # Everything that arrived meanwhile is the next batch, handed out at once: its first
    # record has already waited longer than `within`.
    assert second == [3, 4, 5, 6, 7, 8, 9]
    assert waited < 0.5
    assert acked_while_working == []  # nothing acked before the agent asked for more
    assert acked == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]


def test_a_batch_is_never_larger_than_max_and_the_drainer_waits_for_room():
    async def run() -> tuple[list, list]:
        stream = Stream()
        batches, first = await _started(stream, max_=4, within=10.0)
        handing = asyncio.ensure_future(_hand_on_all(stream, range(10)))
        batch = await first  # full: no need to wait 10 s
        await asyncio.sleep(0.01)
        handed_while_full = stream.current_event
        second = await batches.__anext__()
        third_task = asyncio.ensure_future(batches.__anext__())
        await handing
        stream.stopped.set()
        await asyncio.wait([third_task], timeout=1)
        return [batch, second, handed_while_full]

    batch, second, handed_while_full = asyncio.run(run())
    assert batch == [0, 1, 2, 3]
    assert second == [4, 5, 6, 7]
    assert handed_while_full == 8  # 4..7 taken in, 8 waits for room


async def _hand_on_all(stream: Stream, values) -> None:
    for value in values:
        await stream.hand_on(value)


def test_at_a_low_rate_a_record_waits_within_for_others_then_goes_alone():
    async def run() -> tuple[list, float]:
        stream = Stream()
        batches, first = await _started(stream, max_=100, within=0.05)
        loop = asyncio.get_running_loop()
        await asyncio.sleep(0.2)  # an idle stream: nothing handed out, nothing to wait for
        assert not first.done()
        sent = loop.time()
        await stream.hand_on(1)
        batch = await first
        waited = loop.time() - sent
        stream.stopped.set()
        await batches.aclose()
        return [batch, waited]

    batch, waited = asyncio.run(run())
    assert batch == [1]
    assert 0.045 <= waited < 1.0


class Event:
    """An event as discard() sees it: its message's topic partition."""

    def __init__(self, value: int, tp: str) -> None:
        self.value, self.message = value, type("Message", (), {"tp": tp})()

    def __repr__(self) -> str:
        return f"{self.value}@{self.message.tp}"


def test_a_rebalance_drops_what_was_taken_in_of_the_partitions_given_up_and_nothing_else():
    async def run() -> tuple[list, list, int]:
        stream = Stream()
        taker = BatchTaker(stream, max_=4, within=0.01)
        batches = taker.batches()
        first = asyncio.ensure_future(batches.__anext__())
        await asyncio.sleep(0)
        events = [Event(i, "p0" if i % 2 else "p1") for i in range(6)]
        handing = asyncio.ensure_future(_hand_on_all(stream, events))
        batch = await first  # 0..3, the agent works on them
        await asyncio.sleep(0.01)  # 4 and 5 taken in meanwhile
        dropped = taker.discard({"p1"})  # the rebalance gives p1 up
        second = await batches.__anext__()
        await handing
        stream.stopped.set()
        await batches.aclose()
        return [[e.value for e in batch], [e.value for e in second], dropped, stream.acked]

    batch, second, dropped, acked = asyncio.run(run())
    assert batch == [0, 1, 2, 3]  # already handed out: the agent finishes it
    assert dropped == 1 and second == [5]  # 4 was p1's: left for its new owner
    assert [e.value for e in acked] == [0, 1, 2, 3, 5]  # 4 never acknowledged here
