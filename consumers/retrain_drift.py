"""The retrain loop's drift checks: Evidently's report on the newest stored shots against the
champion's training reference, saved under the home's ``reports/`` and exported as metrics.

Each check compares the last ``window`` stored shots with the champion's training reference
(the sample logged with it in MLflow; for a version without one, the first ``window`` shots
stored).  A retrain answers the drift seen so far: the next verdict is on shots stored after it.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from consumers.retrain_data import errors_of, labelled_since
from models.drift import ErrorDrift
from models.drift_report import DRIFT_SHARE, DriftSummary, feature_frame
from models.reference import STORED, Reference
from parivision.metrics import Metrics
from parivision.settings import Settings
from parivision.store import SHOTS, read_range


def recent_shots(
    db,
    window: int,
    *,
    after: float = 0.0,
    oldest: bool = False,
    newest_from: float | None = None,
) -> pd.DataFrame:
    """The last ``window`` shots scored after ``after`` (the first ones when ``oldest``), in the
    order scored: their stored features, and ``outcome`` and ``p_champion`` where known (NaN
    where not).

    ``newest_from``, when the caller knows one, is a ``scored_at`` with at least ``window``
    shots scored at or after it: that range is then read, in slices
    (:func:`parivision.store.read_range`), instead of a sort of every shot scored after
    ``after`` for its last ``window`` (which the local server does by reading them all)."""
    fields = {"_id": 0, "features": 1, "outcome": 1, "p_champion": 1}
    if newest_from is not None and not oldest and newest_from > after:
        docs = list(read_range(db[SHOTS], "scored_at", newest_from, fields, inclusive=True))
        docs = docs[-window:]
    else:
        docs = list(
            db[SHOTS]
            .find({"scored_at": {"$gt": after}}, fields)
            .sort("scored_at", 1 if oldest else -1)
            .limit(window)
        )
        if not oldest:
            docs.reverse()
    frame = feature_frame([d.get("features") or {} for d in docs])
    for column in ("outcome", "p_champion"):
        frame[column] = [_number(d.get(column)) for d in docs]
    return frame


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


def stored_reference(db, window: int, *, after: float = 0.0, why: str = "") -> Reference | None:
    """The first ``window`` shots stored after ``after``: the reference for a champion without
    a training sample; None until there are two windows that do not overlap."""
    if db[SHOTS].count_documents({"scored_at": {"$gt": after}}) < 2 * window:
        return None
    frame = recent_shots(db, window, after=after, oldest=True)
    since = " since the last retrain" if after else ""
    return Reference(
        frame=frame,
        kind=STORED,
        description=f"the first {len(frame):,} shots stored{since}" + (f" ({why})" if why else ""),
    )


def champion_reference(settings: Settings, cache: dict[str, Reference | None]):
    """The champion's version and its training reference (None without one), and why not.

    ``cache`` keeps each version's reference, so a poll asks the registry only which version
    is the champion.
    """
    from mlflow.exceptions import MlflowException

    from models import reference, registry

    try:
        version = registry.champion_version(settings)
        if version is None:
            return None, None, "no champion yet"
        if version not in cache:
            cache[version] = reference.champion_reference(settings, version)
    except MlflowException as error:
        return None, None, f"registry at {settings.mlflow()} unavailable: {str(error)[:200]}"
    found = cache[version]
    return version, found, "" if found else f"champion v{version} has no training sample logged"


def run_drift_check(
    settings: Settings,
    db,
    window: int,
    *,
    after: float = 0.0,
    drift_share: float = DRIFT_SHARE,
    champion: tuple[str | None, Reference | None, str] | None = None,
    at: float | None = None,
    newest_from: float | None = None,
) -> DriftSummary | None:
    """Evidently's drift and quality report on the last ``window`` shots stored after
    ``after``, saved under the home's ``reports/``; None until there are enough shots.

    Args:
        champion: the champion's version, its reference and why it has none (default: asked
            of the registry with :func:`champion_reference`).
        newest_from: a ``scored_at`` with at least ``window`` shots scored after ``after``
            at or after it, when the caller knows one (:func:`recent_shots`): the window is
            then read as a range, and not counted first.
    """
    from models.drift_checks import save_check
    from models.drift_report import check_drift, reports_folder

    version, reference, why = champion or champion_reference(settings, {})
    if reference is not None:
        known = newest_from is not None and newest_from > after
        if not known and db[SHOTS].count_documents({"scored_at": {"$gt": after}}) < window:
            return None
    else:
        reference = stored_reference(db, window, after=after, why=why)
        if reference is None:
            return None
    recent = recent_shots(db, window, after=after, newest_from=newest_from)
    summary, inputs = check_drift(
        recent, reference, drift_share=drift_share, champion_version=version, at=at
    )
    folder = reports_folder(settings)
    save_check(folder, summary, inputs, keep=settings.drift_report_keep)
    return summary


def export_drift(metrics: Metrics, summary: DriftSummary) -> None:
    """Set the retrainer's drift and quality gauges from one check's summary."""
    metrics["drift_checks"].inc()
    metrics["drift_share"].set(summary.drift_share)
    metrics["drift_detected"].set(1 if summary.dataset_drift else 0)
    metrics["drifted_features"].set(len(summary.drifted))
    for name, score in summary.features.items():
        metrics["feature_drift"].labels(feature=name).set(score.score)
    for name, value in summary.quality.items():
        metrics["recent_quality"].labels(metric=name).set(value)


def drift_status(
    settings: Settings,
    db,
    window: int,
    *,
    delta: float = 0.002,
    drift_share: float | None = None,
) -> dict[str, Any]:
    """The drift now, as ``parivision drift`` shows it: ADWIN over every stored label, and
    Evidently's report on the last ``window`` stored shots (saved, as the loop saves it)."""
    detector = ErrorDrift(delta)
    detector.update(errors_of(labelled_since(db, 0.0)))
    share = drift_share or settings.retrain_drift_share or DRIFT_SHARE
    summary = run_drift_check(settings, db, window, drift_share=share)
    return {
        "adwin": detector.state(),
        "data": summary.as_dict() if summary else None,
        "window": window,
        "report": summary.report if summary else None,
    }
