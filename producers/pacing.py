"""How fast a replay sends shots: as fast as possible, at a fixed rate, or on the game clock.

A pacer's :meth:`~Pacer.wait` is called with each shot just before it is sent and blocks until
it is time.  Rate and clock pacers keep a target schedule rather than sleeping a fixed gap per
shot, so the time spent sending does not add up and the rate holds over a long replay.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

__all__ = ["GameClockPacer", "MaxPacer", "Pacer", "RatePacer", "game_seconds", "make_pacer"]

# Sleeping for less than this costs more in wake-up jitter than it gains; such waits are
# carried over to the next shot instead, which keeps high rates accurate.
_MIN_SLEEP = 0.002
# After a stall (a slow broker, a paused laptop) longer than this, start a fresh schedule
# instead of sending the backlog in one burst.
_MAX_LAG = 1.0


@runtime_checkable
class Pacer(Protocol):
    """Decides when the next shot may be sent."""

    def wait(self, shot: Mapping[str, Any]) -> None:
        """Block until ``shot`` may be sent."""


class MaxPacer:
    """No waiting: replay as fast as the producer can send."""

    def wait(self, shot: Mapping[str, Any]) -> None:
        """Return at once."""


class _Scheduled:
    """Shared clock handling: sleep until a target time, resync after a long stall."""

    def __init__(self, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self._clock = clock
        self._sleep = sleep

    def _sleep_until(self, target: float) -> bool:
        """Sleep until ``target``; False if we are more than ``_MAX_LAG`` behind it."""
        delay = target - self._clock()
        if delay >= _MIN_SLEEP:
            self._sleep(delay)
        return delay > -_MAX_LAG


class RatePacer(_Scheduled):
    """A steady ``shots_per_second``, measured from the first shot.

    Shot ``n`` is due ``n / shots_per_second`` after the first; at high rates most calls return
    at once and the pacer sleeps every few shots, in chunks of at least 2 ms.

    Args:
        shots_per_second: The target rate, above 0.
        clock: Monotonic clock in seconds (injectable for tests).
        sleep: Sleep function (injectable for tests).

    Raises:
        ValueError: If the rate is not positive.
    """

    def __init__(
        self,
        shots_per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not shots_per_second > 0:
            raise ValueError(f"shots_per_second must be above 0, got {shots_per_second}")
        super().__init__(clock, sleep)
        self.interval = 1.0 / shots_per_second
        self._start: float | None = None
        self._sent = 0

    def wait(self, shot: Mapping[str, Any]) -> None:
        """Block until this shot's slot on the schedule."""
        if self._start is None:
            self._start = self._clock()
        elif not self._sleep_until(self._start + self._sent * self.interval):
            self._start, self._sent = self._clock(), 0
        self._sent += 1


class GameClockPacer(_Scheduled):
    """Shots of a game arrive as they did on the game clock, ``speed`` times faster.

    Between two shots of the same game it waits the game time between them divided by
    ``speed`` (``speed=1`` is real time, ``speed=60`` plays a 12-minute period in 12 seconds).
    A new game, or a clock that runs backwards (out-of-order rows), starts a new schedule
    without waiting.  Only the game clock counts: stoppages, which the data does not record,
    take no time.

    Args:
        speed: How many times faster than the game clock, above 0.
        clock: Monotonic clock in seconds (injectable for tests).
        sleep: Sleep function (injectable for tests).

    Raises:
        ValueError: If the speed is not positive.
    """

    def __init__(
        self,
        speed: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be above 0, got {speed}")
        super().__init__(clock, sleep)
        self.speed = speed
        self._game: Any = None
        self._anchor_game = 0.0  # game seconds at the start of the current schedule
        self._anchor_wall = 0.0  # clock() at the start of the current schedule
        self._last = 0.0

    def wait(self, shot: Mapping[str, Any]) -> None:
        """Block until this shot's moment on the sped-up game clock."""
        now_game = game_seconds(shot)
        if shot.get("game_id") != self._game or now_game < self._last:
            self._rebase(shot.get("game_id"), now_game)
            return
        self._last = now_game
        target = self._anchor_wall + (now_game - self._anchor_game) / self.speed
        if not self._sleep_until(target):
            self._rebase(self._game, now_game)

    def _rebase(self, game: Any, now_game: float) -> None:
        self._game, self._last = game, now_game
        self._anchor_game, self._anchor_wall = now_game, self._clock()


def game_seconds(shot: Mapping[str, Any]) -> int:
    """Game-clock seconds elapsed at a shot: 12-minute periods, then 5-minute overtimes.

    Example:
        >>> game_seconds({"period": 2, "minutes_remaining": 11, "seconds_remaining": 30})
        750
        >>> game_seconds({"period": 5, "minutes_remaining": 4, "seconds_remaining": 0})
        2940
    """
    period = int(shot["period"])
    remaining = int(shot["minutes_remaining"]) * 60 + int(shot["seconds_remaining"])
    if period <= 4:
        return (period - 1) * 720 + (720 - remaining)
    return 4 * 720 + (period - 5) * 300 + (300 - remaining)


def make_pacer(
    rate: float | None = None,
    speed: float | None = None,
    max: bool = False,  # noqa: A002
) -> Pacer:
    """The pacer for the replay options: at most one of ``rate``, ``speed`` and ``max``.

    Args:
        rate: Shots per second, for a :class:`RatePacer`.
        speed: Game-clock speed-up, for a :class:`GameClockPacer`.
        max: Send as fast as possible (:class:`MaxPacer`), which is also the default.

    Returns:
        The pacer.

    Raises:
        ValueError: If more than one option is given, or a rate or speed is not positive.
    """
    given = [
        name
        for name, on in (("rate", rate is not None), ("speed", speed is not None), ("max", max))
        if on
    ]
    if len(given) > 1:
        raise ValueError(f"choose one of rate, speed and max for the replay, got {given}")
    if rate is not None:
        return RatePacer(rate)
    if speed is not None:
        return GameClockPacer(speed)
    return MaxPacer()
