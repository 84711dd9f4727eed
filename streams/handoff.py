"""Hand each fetched message to the streams without four asyncio tasks per message.

Faust's consumer hands every message on with
``await self.wait_first(callback(message), self.suspend_flow.wait())``: mode's ``wait_first``
wraps the callback, the flow event and the service's stopped and crashed events in four tasks,
waits on them with ``asyncio.wait`` and cancels the three that lose.  The callback almost
always finishes without waiting at all (the message is decoded and put on a stream's queue
that has room), so on this machine that machinery was a fifth of a bare Faust agent's samples
under py-spy, more than the decoding and the agent together.

:func:`eager` runs the callback at once, in the fetcher's own task.  If it finishes without
suspending, that is all.  If it has to wait (a full buffer, flow control, a full producer
buffer), the part still to run is handed to Faust's own ``wait_first`` and raced against the
flow event as before; when the flow is already suspended (a rebalance), nothing changes from
Faust's way.
"""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from typing import Any


class _Resumed:
    """An awaitable that carries on a coroutine already run up to its first suspension."""

    def __init__(self, coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
        self.coro, self.yielded = coro, yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, yielded = self.coro, self.yielded
        while True:
            try:
                sent = yield yielded
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as error:  # a cancellation thrown in: the coroutine's to handle
                try:
                    yielded = coro.throw(error)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    yielded = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


def eager(consumer: Any) -> None:
    """Make ``consumer`` (a Faust consumer, before it starts) run each message's callback at
    once, falling back to Faust's race only when the callback has to wait."""
    wait_first = consumer.wait_first

    async def wait_first_eagerly(first: Any, *others: Any, timeout: Any = None) -> Any:
        if consumer.suspend_flow.is_set() or not isinstance(first, Coroutine):
            return await wait_first(first, *others, timeout=timeout)
        try:
            yielded = first.send(None)
        except StopIteration:
            for other in others:
                if isinstance(other, Coroutine):
                    other.close()  # never started: the flow event was not needed
            return None
        except BaseException:
            for other in others:
                if isinstance(other, Coroutine):
                    other.close()
            raise
        return await wait_first(_Resumed(first, yielded), *others, timeout=timeout)

    consumer.wait_first = wait_first_eagerly
