"""What time it is on one partition, as the records read there tell it: the clock by which
:class:`streams.flow.ShotFlow` decides an outcome is overdue."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable


class DataClock:
    """What time it is on one partition, as the records read so far tell it.

    For each partition and input (attempts, outcomes) it keeps the newest record timestamp read
    and the wall time it was read at; the partition's time is the earlier of the two inputs'
    ``newest timestamp + wall time since it was read``.  While records flow live, that is the
    wall clock; while a worker reads a backlog (after a restart), it is the backlog's own time,
    so an attempt is overdue only once the worker has read ``wait_s`` of data past it, outcomes
    included.  An input with nothing read since the worker started (or since :meth:`assigned`
    gave it the partition, taken over from a worker that died) counts as caught up once
    ``grace_s`` has passed; before that the partition has no time yet (nothing is overdue).

    Example:
        >>> wall = iter([100.0, 100.0, 101.0, 105.0, 131.0]).__next__
        >>> clock = DataClock(wall, grace_s=30.0)      # started at 100
        >>> clock.saw("attempt", 0, 40.0)              # a backlog from 60 s ago, read at 100
        >>> clock.now(0) is None                       # no outcome read yet, within the grace
        True
        >>> clock.saw("outcome", 0, 42.0)              # read at 105
        >>> clock.now(0)                               # 40 + (131 - 100) vs 42 + (131 - 105)
        68.0
    """

    INPUTS = ("attempt", "outcome")

    def __init__(self, wall: Callable[[], float] = time.time, grace_s: float = 30.0) -> None:
        self.wall = wall
        self.grace_s = grace_s
        self.started = wall()
        self._seen: dict[tuple[str, int], tuple[float, float]] = {}
        self._assigned: dict[int, float] = {}
        self._current: set[int] = set()

    def assigned(self, partitions: Iterable[int]) -> None:
        """The worker's partitions after a rebalance: those new to it start their time again
        from what is read there (the worker they came from may have died a while ago)."""
        now, partitions = self.wall(), set(partitions)
        for partition in partitions - self._current:
            self._assigned[partition] = now
            for kind in self.INPUTS:
                self._seen.pop((kind, partition), None)
        self._current = partitions

    def saw(self, kind: str, partition: int, timestamp: float | None) -> None:
        """A record of ``kind`` read on ``partition``, produced at ``timestamp`` (None: now)."""
        read_at = self.wall()
        at = read_at if timestamp is None else timestamp
        seen = self._seen.get((kind, partition))
        self._seen[(kind, partition)] = (at if seen is None else max(at, seen[0]), read_at)

    def resume(self) -> None:
        """Nothing could be read for a while (the broker was away): every partition's time
        starts again from what is read now, as if it had just been assigned."""
        now = self.wall()
        for partition in self._current | {p for _, p in self._seen}:
            self._assigned[partition] = now
        self._seen.clear()
        self.started = now

    def now(self, partition: int) -> float | None:
        wall = self.wall()
        times = []
        for kind in self.INPUTS:
            seen = self._seen.get((kind, partition))
            if seen is not None:
                newest, read_at = seen
                times.append(newest + (wall - read_at))
            elif wall - self._assigned.get(partition, self.started) >= self.grace_s:
                times.append(wall)  # nothing came on this input: it is caught up
            else:
                return None
        return min(times)
