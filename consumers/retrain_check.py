"""One look of the retrain loop at the store: what the triggers saw and said, in one line.

:class:`Check` is what :meth:`consumers.retrain_trigger.RetrainLoop.check` returns and a retrain
(:mod:`consumers.retrain_challenge`) records; :func:`summary` is how the loop says it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.drift_report import DriftSummary


@dataclass
class Check:
    """One look at the store: what the triggers saw and said."""

    at: float
    reasons: list[str]
    new_labelled: int
    labelled_until: float
    drift: DriftSummary | None
    adwin: dict[str, Any]
    request: str | None = None


def summary(check: Check) -> str:
    """The check in one line: new labels, data drift and ADWIN's window."""
    drift = check.drift
    if drift is None:
        data = "data drift not measured yet"
    else:
        verdict = "dataset drift" if drift.dataset_drift else "no dataset drift"
        data = f"drift share {drift.drift_share:.2f} ({verdict}) against {drift.reference}"
    mean = check.adwin.get("mean_error")
    return (
        f"{check.new_labelled:,} new labelled, {data}, ADWIN window "
        f"{check.adwin['window']:,} mean error {'n/a' if mean is None else f'{mean:.3f}'} "
        f"({check.adwin['detections']} drift(s))"
    )
