"""streams.handoff against a consumer shaped like Faust's (its ``wait_first`` and flow event);
the worker's integration tests run it on the real broker."""

from __future__ import annotations

import asyncio
import warnings

import pytest

from streams import handoff


class Consumer:
    """Faust's consumer as the hand-off sees it: ``wait_first`` races awaitables, as mode's."""

    def __init__(self) -> None:
        self.suspend_flow = asyncio.Event()
        self.raced: list[tuple] = []

    async def wait_first(self, *awaitables, timeout=None):
        self.raced.append(awaitables)
        tasks = [
            asyncio.ensure_future(a if not hasattr(a, "wait") else a.wait()) for a in awaitables
        ]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in done:
            task.result()


def test_a_callback_that_never_waits_runs_at_once_without_a_race():
    handed: list[int] = []

    async def callback(message: int) -> None:
        handed.append(message)

    async def run() -> Consumer:
        consumer = Consumer()
        handoff.eager(consumer)
        for message in range(3):
            await consumer.wait_first(callback(message), consumer.suspend_flow.wait())
        return consumer

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an unawaited flow-event coroutine would warn
        consumer = asyncio.run(run())
    assert handed == [0, 1, 2]
    assert consumer.raced == []


def test_a_callback_that_has_to_wait_finishes_in_faust_s_race():
    handed: list[str] = []

    async def callback(room: asyncio.Event) -> None:
        handed.append("decoded")
        await room.wait()  # a full buffer
        handed.append("queued")

    async def run() -> Consumer:
        consumer = Consumer()
        handoff.eager(consumer)
        room = asyncio.Event()
        asyncio.get_running_loop().call_later(0.01, room.set)
        await consumer.wait_first(callback(room), consumer.suspend_flow.wait())
        return consumer

    consumer = asyncio.run(run())
    assert handed == ["decoded", "queued"]
    assert len(consumer.raced) == 1


def test_a_suspended_flow_is_raced_as_faust_does():
    started: list[int] = []

    async def callback() -> None:
        started.append(1)
        await asyncio.sleep(10)

    async def run() -> Consumer:
        consumer = Consumer()
        handoff.eager(consumer)
        consumer.suspend_flow.set()  # a rebalance: the race ends at once
        await asyncio.wait_for(
            consumer.wait_first(callback(), consumer.suspend_flow.wait()), timeout=5
        )
        return consumer

    consumer = asyncio.run(run())
    assert len(consumer.raced) == 1


def test_an_error_in_the_callback_reaches_the_fetcher():
    async def callback() -> None:
        raise ValueError("undecodable")

    async def run() -> None:
        consumer = Consumer()
        handoff.eager(consumer)
        await consumer.wait_first(callback(), consumer.suspend_flow.wait())

    with pytest.raises(ValueError, match="undecodable"):
        asyncio.run(run())


def test_a_cancelled_wait_cancels_the_callback_where_it_waits():
    cleaned: list[str] = []

    async def callback(never: asyncio.Event) -> None:
        try:
            await never.wait()
        except asyncio.CancelledError:
            cleaned.append("cancelled")
            raise

    async def run() -> None:
        consumer = Consumer()
        handoff.eager(consumer)
        never = asyncio.Event()
        task = asyncio.ensure_future(
            consumer.wait_first(callback(never), consumer.suspend_flow.wait())
        )
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert cleaned == ["cancelled"]
