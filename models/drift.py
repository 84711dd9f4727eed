"""Drift: when the champion's errors change (River's ADWIN) or the shots it sees do (per-feature
two-sample tests), and when either of those, a count of new labels or the clock says retrain.

Data drift is measured here with SciPy rather than Evidently (Evidently pulls in a web server,
uvloop and statsmodels, which the stream's environment should not carry): each feature of a
recent window is compared with a reference window by a two-sample Kolmogorov-Smirnov test when
it is continuous, or a chi-square test of the two windows' category counts when it is discrete
(the zone codes, the 0/1 action flags, period, shot value, and the outcome when given).  The
drift share is the fraction of features whose p-value is below ``p_threshold`` -- the number
Evidently's "dataset drift" reports.

Everything in this module is pure: no database, no clock.  The retrain loop
(:mod:`consumers.retrain_trigger`) reads MongoDB and calls it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from models.features import CATEGORICAL

# Reasons a retrain starts, in the order they are reported.
MANUAL, COUNT, SCHEDULE, ERROR_DRIFT, DATA_DRIFT = (
    "manual",
    "count",
    "schedule",
    "error_drift",
    "data_drift",
)
REASONS = (MANUAL, COUNT, SCHEDULE, ERROR_DRIFT, DATA_DRIFT)

# A feature with at most this many distinct values (over both windows) is tested as categorical.
DISCRETE_MAX_VALUES = 12


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


@dataclass(frozen=True)
class FeatureDrift:
    name: str
    test: str  # "ks" or "chi2"
    statistic: float
    p_value: float
    drifted: bool


@dataclass
class DriftReport:
    """Per-feature tests of a recent window against a reference window."""

    features: list[FeatureDrift]
    reference_rows: int
    recent_rows: int
    p_threshold: float = 0.05

    @property
    def share(self) -> float:
        """The fraction of tested features that drifted (0 when nothing could be tested)."""
        return sum(f.drifted for f in self.features) / len(self.features) if self.features else 0.0

    @property
    def drifted(self) -> list[str]:
        return [f.name for f in self.features if f.drifted]

    def as_dict(self) -> dict[str, Any]:
        return {
            "share": round(self.share, 4),
            "drifted": self.drifted,
            "reference_rows": self.reference_rows,
            "recent_rows": self.recent_rows,
            "p_threshold": self.p_threshold,
            "method": "scipy: ks_2samp (continuous), chi2_contingency (discrete)",
            "features": {
                f.name: {
                    "test": f.test,
                    "statistic": _finite(f.statistic),
                    "p_value": _finite(f.p_value),
                    "drifted": f.drifted,
                }
                for f in self.features
            },
        }


def _finite(value: float) -> float | None:
    return round(float(value), 6) if math.isfinite(value) else None


def _chi2(reference: np.ndarray, recent: np.ndarray) -> tuple[float, float]:
    from scipy.stats import chi2_contingency

    categories = np.union1d(reference, recent)
    if len(categories) < 2:
        return 0.0, 1.0  # one category on both sides: nothing to differ in
    table = np.array(
        [[np.sum(side == c) for c in categories] for side in (reference, recent)], dtype=float
    )
    statistic, p_value, _dof, _expected = chi2_contingency(table)
    return float(statistic), float(p_value)


def _ks(reference: np.ndarray, recent: np.ndarray) -> tuple[float, float]:
    from scipy.stats import ks_2samp

    result = ks_2samp(reference, recent)
    return float(result.statistic), float(result.pvalue)


def drift_report(
    reference: Mapping[str, Sequence[float]],
    recent: Mapping[str, Sequence[float]],
    *,
    categorical: Iterable[str] = (*CATEGORICAL, "made"),
    p_threshold: float = 0.05,
    min_rows: int = 30,
) -> DriftReport:
    """Test every column the two windows share; missing values (NaN) are left out per column.

    ``categorical`` columns, and any column with few distinct values, get a chi-square test of
    their counts; the rest a two-sample Kolmogorov-Smirnov test.  A column with fewer than
    ``min_rows`` values on either side is not tested.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> same = drift_report({"d": rng.normal(0, 1, 500)}, {"d": rng.normal(0, 1, 500)})
        >>> shifted = drift_report({"d": rng.normal(0, 1, 500)}, {"d": rng.normal(1, 1, 500)})
        >>> same.share, shifted.share
        (0.0, 1.0)
    """
    discrete = set(categorical)
    features = []
    names = [name for name in reference if name in recent]
    lengths = {len(reference[n]) for n in names}, {len(recent[n]) for n in names}
    for name in names:
        a = np.asarray(reference[name], dtype=np.float64)
        b = np.asarray(recent[name], dtype=np.float64)
        a, b = a[~np.isnan(a)], b[~np.isnan(b)]
        if len(a) < min_rows or len(b) < min_rows:
            continue
        chi = name in discrete or len(np.union1d(a, b)) <= DISCRETE_MAX_VALUES
        statistic, p_value = _chi2(a, b) if chi else _ks(a, b)
        features.append(
            FeatureDrift(
                name=name,
                test="chi2" if chi else "ks",
                statistic=statistic,
                p_value=p_value,
                drifted=bool(p_value < p_threshold),
            )
        )
    return DriftReport(
        features=features,
        reference_rows=max(lengths[0], default=0),
        recent_rows=max(lengths[1], default=0),
        p_threshold=p_threshold,
    )


def columns_from_feature_dicts(
    rows: Sequence[Mapping[str, float]], names: Iterable[str]
) -> dict[str, np.ndarray]:
    """Feature dicts as stored in the ``shots`` collection, as columns (absent keys are NaN)."""
    return {
        name: np.array([row.get(name, np.nan) for row in rows], dtype=np.float64) for name in names
    }


@dataclass
class TriggerConfig:
    """When to retrain; a threshold of 0 (or None) turns its trigger off."""

    min_new_labelled: int = 5000
    every_s: float | None = 86_400.0
    drift_share: float | None = 0.5
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
        >>> triggers.check(30.0, new_labelled=10, errors=[], drift_share=0.1)
        []
        >>> triggers.check(61.0, new_labelled=150, errors=[], drift_share=0.1)
        ['count', 'schedule']
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
        drift_share: float | None,
        *,
        manual: bool = False,
    ) -> list[str]:
        """The reasons to retrain now, empty for none.

        Args:
            now: the time of the check (seconds since the epoch).
            new_labelled: labelled shots that arrived since the last retrain.
            errors: the champion's errors on the shots labelled since the previous check, in
                ``labelled_at`` order; they are fed to ADWIN (always, so it keeps up).
            drift_share: the data-drift share now (None: not measured).
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
        if (
            config.drift_share
            and drift_share is not None
            and drift_share >= config.drift_share
            and cooled
        ):
            reasons.append(DATA_DRIFT)
        return reasons

    def retrained(self, now: float, labelled_until: float) -> None:
        """Remember a retrain (whatever its promotion decision): counts and clocks restart."""
        self.state.last_retrain_at = now
        self.state.last_labelled_at = max(self.state.last_labelled_at, labelled_until)
        self.state.retrains += 1
        self.error_drift_pending = False
