"""When the retrain loop runs a data-drift check, and on which window of stored shots.

A check reads a window of shots from the store and keeps its frames, so it is not run every
poll: one every ``drift_every`` new stored shots (default the window, so checks do not
overlap), one more when shots stop, none while nothing changed.  The window is read as a range
on ``scored_at`` from the ``window`` newest stored shots the polls have seen, not as a sort of
the whole store.  The checks themselves are Evidently's (:mod:`consumers.retrain_drift`).

:class:`DriftChecks` is a part of :class:`consumers.retrain_trigger.RetrainLoop`: it uses the
loop's ``settings``, ``db``, ``window``, ``drift_every``, ``labels``, ``triggers``,
``champion``, ``metrics`` and ``_say``.
"""

from __future__ import annotations

import heapq
import math
from typing import Any

from consumers.retrain_drift import export_drift, run_drift_check
from models.drift_report import DRIFT_SHARE, DriftSummary
from parivision.store import SHOTS, read_range


class DriftChecks:
    """The loop's drift checks: run one when its window has moved on, else reuse the last."""

    def _start_drift_checks(self) -> None:
        """No check yet, no shot read yet (called once, by the loop's ``__init__``)."""
        # The last drift check, and what it was run on: a poll that finds no new shot, no new
        # label and the same champion reuses it rather than writing the same report again.
        self.drift: DriftSummary | None = None
        self._drift_key: tuple[Any, ...] | None = None
        self._newest_polled: float | None = None
        # The ``window`` newest ``scored_at`` the polls have read (a min-heap): the drift
        # check reads its window as a range from the smallest of them, not as a sort of the
        # whole store for its last ``window`` (a scan of every stored shot on the local
        # server: 1.2 s at 24,000 shots, blocking the sink's writes meanwhile).
        self._newest_scored: list[float] = []
        self._newest_pushed = -math.inf
        # Shots the polls have read since the last drift check (``_too_soon``).
        self._stored_since_check = 0

    def _drift_check(self, now: float) -> DriftSummary | None:
        after = self._reference_after()
        newest_at = self._newest_stored(after)
        champion = self.champion()
        quiet, self._newest_polled = newest_at == self._newest_polled, newest_at
        key = (after, newest_at, self.labels.until, champion[0], champion[1] is None)
        if key == self._drift_key or (not quiet and self._too_soon(key)):
            return self.drift
        share = self.triggers.config.drift_share or DRIFT_SHARE
        try:
            drift = run_drift_check(
                self.settings,
                self.db,
                self.window,
                after=after,
                drift_share=share,
                champion=champion,
                at=now,
                newest_from=self._window_start(after),
            )
        except ValueError as error:  # Evidently could not test these shots: say so, go on
            self._say(f"[bold red]drift check failed[/]: {error}")
            drift = None
        self.drift, self._drift_key = drift, key
        self._stored_since_check = 0
        if drift is not None:
            export_drift(self.metrics, drift)
        return drift

    def _newest_stored(self, after: float) -> float | None:
        """When the newest shot stored after ``after`` was scored.  Only the shots scored since
        the last poll are read (a range on the ``scored_at`` index; a sort of the whole
        collection for its last one costs the server a scan of every shot at every poll)."""
        polled = self._newest_polled
        since = after if polled is None else max(after, polled)
        new = read_range(self.db[SHOTS], "scored_at", since, {"_id": 0, "scored_at": 1})
        newest, heap, pushed = None, self._newest_scored, self._newest_pushed
        for doc in new:
            at = float(doc["scored_at"])
            newest = at if newest is None or at > newest else newest
            if at <= pushed:
                continue  # read before: the heap must not count a shot twice
            self._stored_since_check += 1
            if len(heap) < self.window:
                heapq.heappush(heap, at)
            elif at > heap[0]:
                heapq.heapreplace(heap, at)
        if newest is not None:
            self._newest_pushed = max(pushed, newest)
        if newest is None and since > after:
            return polled
        return newest

    def _window_start(self, after: float) -> float | None:
        """A ``scored_at`` at or before the ``window``-th newest stored shot scored after
        ``after``, or None when the polls have not read that many.

        The polls may miss a shot stored late with an older ``scored_at``; that only adds
        shots to the range, so its newest ``window`` are still the store's."""
        heap = self._newest_scored
        if len(heap) < self.window or heap[0] <= after:
            return None
        return heap[0]

    def _too_soon(self, key: tuple[Any, ...]) -> bool:
        """Whether the last report still stands: same reference and champion, and fewer than
        ``drift_every`` shots stored since it.  While shots arrive, a report every
        ``drift_every`` of them; once they stop (nothing new since the last poll), one more
        on the last window, with its labels.  The shots are counted as the polls read them
        (``_newest_stored``), not by the server: a count there reads each of them again."""
        last = self._drift_key
        if self.drift is None or last is None or (last[0], *last[3:]) != (key[0], *key[3:]):
            return False
        if last[1] is None or self.drift_every <= 0:
            return False
        return self._stored_since_check < self.drift_every

    def _reference_after(self) -> float:
        # A retrain answers the drift seen so far: after one, only shots stored since count.
        return self.triggers.state.last_retrain_at if self.triggers.state.retrains else 0.0
