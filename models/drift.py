"""Drift: when the champion's errors change (River's ADWIN) or the shots it sees do (Evidently's
dataset drift, computed by :mod:`models.drift_report`), and when either of those, a count of new
labels or the clock says retrain.

Everything in this module is pure: no database, no clock.  The retrain loop
(:mod:`consumers.retrain_trigger`) reads MongoDB, runs the Evidently report and calls it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

# Reasons a retrain starts, in the order they are reported.
MANUAL, COUNT, SCHEDULE, ERROR_DRIFT, DATA_DRIFT = (
    "manual",
    "count",
    "schedule",
    "error_drift",
    "data_drift",
)
REASONS = (MANUAL, COUNT, SCHEDULE, ERROR_DRIFT, DATA_DRIFT)


def shot_error(outcome: int, p: float) -> float:
    """The champion's error on one labelled shot: ``|outcome - p|``, bounded in [0, 1].

    Example:
        >>> shot_error(1, 0.75), shot_error(0, 0.75)
        (0.25, 0.75)
    """
    return abs(float(outcome) - float(p))


class ErrorDrift:
    """ADWIN (River) over the champion's per-shot error, fed in ``labelled_at`` order.

    ADWIN keeps a window of recent errors and cuts it where two sub-windows' means differ more
    than chance allows at confidence ``delta``; a cut is a drift.  It is two-sided: errors that
    drop (a shift to shots the model finds easy) count too, since the probabilities are then
    no longer calibrated to what is being shot.

    Example:
        >>> detector = ErrorDrift()
        >>> detector.update([0.3] * 2000 + [0.8] * 500)
        True
        >>> detector.detections >= 1 and detector.state()["mean_error"] > 0.5
        True
    """

    def __init__(self, delta: float = 0.002) -> None:
        from river.drift import ADWIN

        self.delta = delta
        self._adwin = ADWIN(delta=delta)
        self.seen = 0
        self.detections = 0
        self.last_detected_at: int | None = None
        self.mean_before: float | None = None

    def update(self, errors: Iterable[float]) -> bool:
        """Feed errors in order; True if ADWIN detected a change anywhere in them."""
        detected = False
        for error in errors:
            before = self._adwin.estimation
            self._adwin.update(float(error))
            self.seen += 1
            if self._adwin.drift_detected:
                detected = True
                self.detections += 1
                self.last_detected_at = self.seen
                self.mean_before = float(before)
        return detected

    def state(self) -> dict[str, Any]:
        """What ADWIN holds now, as JSON-ready numbers."""
        return {
            "delta": self.delta,
            "seen": self.seen,
            "window": int(self._adwin.width),
            "mean_error": float(self._adwin.estimation) if self._adwin.width else None,
            "detections": self.detections,
            "last_detected_at": self.last_detected_at,
            "mean_error_before_last_drift": self.mean_before,
        }


@dataclass
class TriggerConfig:
    """When to retrain; a threshold of 0 (or None) turns its trigger off."""

    min_new_labelled: int = 5000
    every_s: float | None = 86_400.0
    # The share of drifted features at which Evidently calls the dataset drifted (see
    # models.drift_report.DRIFT_SHARE); the data_drift trigger follows that verdict.
    drift_share: float | None = 0.25
    error_drift: bool = True
    # Drift triggers wait this long after a retrain (not after a start): the new model needs
    # shots to be judged on.
    cooldown_s: float = 600.0


@dataclass
class TriggerState:
    """What the triggers remember between checks (rebuilt from ``retrain_events`` on start)."""

    last_retrain_at: float
    last_labelled_at: float = 0.0
    retrains: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "history"}


class Triggers:
    """Decides, from what has arrived since the last retrain, whether to retrain and why.

    Example:
        >>> triggers = Triggers(TriggerConfig(min_new_labelled=100, every_s=60),
        ...                     TriggerState(last_retrain_at=0.0))
        >>> triggers.check(30.0, new_labelled=10, errors=[], data_drift=False)
        []
        >>> triggers.check(61.0, new_labelled=150, errors=[], data_drift=True)
        ['count', 'schedule', 'data_drift']
    """

    def __init__(
        self,
        config: TriggerConfig,
        state: TriggerState,
        detector: ErrorDrift | None = None,
    ) -> None:
        self.config = config
        self.state = state
        self.detector = detector or ErrorDrift()
        # An ADWIN drift seen during the cooldown is kept until a retrain answers it.
        self.error_drift_pending = False

    def check(
        self,
        now: float,
        new_labelled: int,
        errors: Iterable[float],
        data_drift: bool | None,
        *,
        manual: bool = False,
    ) -> list[str]:
        """The reasons to retrain now, empty for none.

        Args:
            now: the time of the check (seconds since the epoch).
            new_labelled: labelled shots that arrived since the last retrain.
            errors: the champion's errors on the shots labelled since the previous check, in
                ``labelled_at`` order; they are fed to ADWIN (always, so it keeps up).
            data_drift: Evidently's dataset drift verdict now (None: not measured).
            manual: someone asked for a retrain.
        """
        config, state = self.config, self.state
        self.error_drift_pending |= self.detector.update(errors)
        cooled = not state.retrains or now - state.last_retrain_at >= config.cooldown_s
        reasons = []
        if manual:
            reasons.append(MANUAL)
        if config.min_new_labelled and new_labelled >= config.min_new_labelled:
            reasons.append(COUNT)
        if config.every_s and now - state.last_retrain_at >= config.every_s:
            reasons.append(SCHEDULE)
        if config.error_drift and self.error_drift_pending and cooled:
            reasons.append(ERROR_DRIFT)
        if config.drift_share and data_drift and cooled:
            reasons.append(DATA_DRIFT)
        return reasons

    def retrained(self, now: float, labelled_until: float) -> None:
        """Remember a retrain (whatever its promotion decision): counts and clocks restart."""
        self.state.last_retrain_at = now
        self.state.last_labelled_at = max(self.state.last_labelled_at, labelled_until)
        self.state.retrains += 1
        self.error_drift_pending = False
