"""Evidently reports: data drift of recent shots against a reference, and the champion's quality
on the recent shots that are labelled.

Two of Evidently's own presets, run on one recent window:

- ``DataDriftPreset`` on the model's features (:data:`models.features.FEATURE_NAMES`), recent
  against the reference, with Evidently's default test per column: against more than 1,000
  reference rows the normed Wasserstein distance for numbers and the Jensen-Shannon distance for
  categories and flags, each drifted at 0.1; against fewer, KS, chi-square and Z tests at
  p < 0.05.  The distances need windows of about 1,000 shots or more: on a few hundred (a game
  or two) they drift by chance.  The dataset drifts when the share of drifted features reaches
  ``drift_share``: that verdict is what the retrain loop's ``data_drift`` trigger uses.
- ``ClassificationPreset`` on the recent shots with an outcome and the champion's probability
  (target ``outcome``, probabilistic prediction ``p_champion``): accuracy, precision, recall,
  F1, ROC-AUC and log loss.

Both go into one HTML report, headed by which reference was used; :func:`save_report` keeps the
last few under the home's ``reports/`` folder with ``latest.html`` and a ``latest.json``
summary, which the API serves at ``/reports/drift``.

Evidently is imported inside the functions that run it: it is heavy (plotly, a web server,
statsmodels), the stream worker never loads it, and the API imports the retrain loop's module
without needing it.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.features import CATEGORICAL, FEATURE_NAMES
from models.reference import Reference

REPORTS = "reports"
LATEST_HTML, LATEST_JSON = "latest.html", "latest.json"
# Evidently's dataset drift verdict: this share of drifted features or more.  Of the 39
# features, 22 (the action words, period, clock, playoffs, angle) stay put when where and how
# well shots are taken changes, so half of them never drift together; see tests/unit/models.
DRIFT_SHARE = 0.25
# Fewer labelled shots than this (or only one outcome) and the quality part is left out.
MIN_LABELLED = 100
# Evidently's classification metrics by type, as the summary and the metrics name them.
QUALITY = {
    "Accuracy": "accuracy",
    "Precision": "precision",
    "Recall": "recall",
    "F1Score": "f1",
    "RocAuc": "roc_auc",
    "LogLoss": "log_loss",
}


@dataclass(frozen=True)
class FeatureScore:
    """One feature's drift test as Evidently ran it."""

    method: str
    score: float
    threshold: float
    drifted: bool


@dataclass
class DriftSummary:
    """What one drift check found; ``as_dict`` is the ``latest.json`` the API serves."""

    at: float
    reference: str  # "champion" (its training sample) or "stored" (earlier stored shots)
    reference_description: str
    reference_rows: int
    recent_rows: int
    labelled_rows: int
    drift_share: float
    drift_threshold: float
    dataset_drift: bool
    drifted: list[str]
    features: dict[str, FeatureScore]
    untested: list[str] = field(default_factory=list)
    quality: dict[str, float] = field(default_factory=dict)
    champion_version: str | None = None
    report: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["at_utc"] = _utc(self.at).isoformat()
        out["drift_share"] = round(self.drift_share, 4)
        out["features"] = {
            name: {**asdict(f), "score": _finite(f.score)} for name, f in self.features.items()
        }
        out["quality"] = {name: _finite(value) for name, value in self.quality.items()}
        return out


def _finite(value: float) -> float | None:
    # Six significant digits: a p-value of 1e-22 stays one, not 0.
    return float(f"{value:.6g}") if math.isfinite(value) else None


def _utc(at: float) -> datetime:
    return datetime.fromtimestamp(at, tz=UTC)


def feature_frame(rows: Sequence[Mapping[str, float]]) -> pd.DataFrame:
    """Feature dicts as the store keeps them (a missing key is a missing value) as a frame of
    :data:`FEATURE_NAMES` columns."""
    return pd.DataFrame(
        {
            name: np.array([row.get(name, np.nan) for row in rows], dtype=np.float64)
            for name in FEATURE_NAMES
        }
    )


def _definition(columns: Iterable[str]):
    from evidently import DataDefinition

    columns = list(columns)
    return DataDefinition(
        numerical_columns=[c for c in columns if c not in CATEGORICAL],
        categorical_columns=[c for c in columns if c in CATEGORICAL],
    )


def _drift(recent: pd.DataFrame, reference: pd.DataFrame, drift_share: float):
    from evidently import Dataset, Report
    from evidently.presets import DataDriftPreset

    # Evidently refuses a column with no value on one side (a feature the store never had).
    columns = [c for c in FEATURE_NAMES if recent[c].notna().any() and reference[c].notna().any()]
    definition = _definition(columns)
    snapshot = Report(
        [DataDriftPreset(columns=columns, drift_share=drift_share)], include_tests=True
    ).run(
        Dataset.from_pandas(recent[columns], data_definition=definition),
        Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    result = snapshot.dict()
    # Each column's test fails when Evidently finds it drifted, whichever way its method
    # reads (a p-value below its threshold, a distance at or above it).
    drifted = {
        test["metric_config"]["params"].get("column"): test["status"] == "FAIL"
        for test in result["tests"]
        if test["metric_config"]["params"]["type"].endswith(":ValueDrift")
    }
    share, scores = 0.0, {}
    for metric in result["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":DriftedColumnsCount"):
            share = float(metric["value"]["share"])
        elif config["type"].endswith(":ValueDrift"):
            scores[config["column"]] = FeatureScore(
                method=config["method"],
                score=float(metric["value"]),
                threshold=float(config["threshold"]),
                drifted=drifted[config["column"]],
            )
    untested = [c for c in FEATURE_NAMES if c not in columns]
    scores = {name: scores[name] for name in FEATURE_NAMES if name in scores}
    return snapshot, share, scores, untested


def _quality(labelled: pd.DataFrame):
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.presets import ClassificationPreset
    from sklearn.exceptions import UndefinedMetricWarning

    definition = DataDefinition(
        classification=[BinaryClassification(target="outcome", prediction_probas="p_champion")]
    )
    data = labelled[["outcome", "p_champion"]].astype({"outcome": "int64", "p_champion": float})
    with warnings.catch_warnings():
        # A champion that never says "made" above 0.5 has no precision; Evidently reports 0.
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        snapshot = Report([ClassificationPreset()]).run(
            Dataset.from_pandas(data.reset_index(drop=True), data_definition=definition), None
        )
    quality = {}
    for metric in snapshot.dict()["metrics"]:
        name = QUALITY.get(metric["config"]["type"].rsplit(":", 1)[-1])
        if name and isinstance(metric["value"], int | float):
            quality[name] = float(metric["value"])
    return snapshot, quality


def evaluate(
    recent: pd.DataFrame,
    reference: Reference,
    *,
    drift_share: float = DRIFT_SHARE,
    min_labelled: int = MIN_LABELLED,
    champion_version: str | None = None,
    at: float | None = None,
) -> tuple[DriftSummary, str]:
    """Run the drift and quality presets; the summary and the HTML report.

    Args:
        recent: the recent shots: :data:`FEATURE_NAMES` columns, and ``outcome`` and
            ``p_champion`` where known (NaN where not).
        reference: what they are compared with (:class:`models.reference.Reference`).
        drift_share: the share of drifted features at which the dataset drifts.
        min_labelled: the labelled shots the quality part needs.
        champion_version: the champion now, as the report names it.
        at: the time of the check (default: now).
    """
    at = time.time() if at is None else at
    drift, share, scores, untested = _drift(recent, reference.frame, drift_share)
    wanted = ["outcome", "p_champion"]
    labelled = recent.dropna(subset=wanted) if set(wanted) <= set(recent) else recent.iloc[0:0]
    quality_snapshot, quality = None, {}
    if len(labelled) >= min_labelled and labelled["outcome"].nunique() == 2:
        quality_snapshot, quality = _quality(labelled)
    summary = DriftSummary(
        at=at,
        reference=reference.kind,
        reference_description=reference.description,
        reference_rows=len(reference.frame),
        recent_rows=len(recent),
        labelled_rows=len(labelled),
        drift_share=share,
        drift_threshold=drift_share,
        dataset_drift=bool(share >= drift_share),
        drifted=[name for name in FEATURE_NAMES if name in scores and scores[name].drifted],
        features=scores,
        untested=untested,
        quality=quality,
        champion_version=champion_version,
    )
    return summary, _html(summary, drift, quality_snapshot, min_labelled)


def _html(summary: DriftSummary, drift, quality, min_labelled: int) -> str:
    from evidently.core.metric_types import render_widgets
    from evidently.legacy.renderers.html_widgets import CounterData, counter, group_widget

    verdict = "detected" if summary.dataset_drift else "not detected"
    champion = f"v{summary.champion_version}" if summary.champion_version else "none"
    head = counter(
        title=f"PariVision drift check, {_utc(summary.at):%Y-%m-%d %H:%M:%S} UTC: recent shots "
        f"against {summary.reference_description}",
        counters=[
            CounterData(f"reference shots ({summary.reference})", f"{summary.reference_rows:,}"),
            CounterData(
                f"recent shots ({summary.labelled_rows:,} labelled)", f"{summary.recent_rows:,}"
            ),
            CounterData("champion", champion),
            CounterData(
                f"drift share: dataset drift {verdict} (at {summary.drift_threshold:g})",
                f"{summary.drift_share:.2f}",
            ),
        ],
    )
    drift_model = drift.to_snapshot_model()
    widgets = [
        head,
        group_widget(
            title=f"Data drift: recent shots against {summary.reference_description}",
            widgets=drift_model.widgets,
        ),
    ]
    tests = list(drift_model.tests_widgets)
    if quality is None:
        widgets.append(
            counter(
                title="Champion quality on recent labelled shots",
                counters=[
                    CounterData(
                        "not measured",
                        f"{summary.labelled_rows:,} labelled shots with a probability; "
                        f"needs {min_labelled:,} with both outcomes",
                    )
                ],
            )
        )
    else:
        quality_model = quality.to_snapshot_model()
        title = f"Champion quality on the {summary.labelled_rows:,} recent labelled shots"
        widgets.append(group_widget(title=title, widgets=quality_model.widgets))
        tests += list(quality_model.tests_widgets)
    return render_widgets(widgets + tests)


def shifted_shots(
    frame: pd.DataFrame, *, feet: float = 8.0, keep_made: float = 0.6, seed: int = 0
) -> pd.DataFrame:
    """Real shots taken ``feet`` further from the hoop, and only ``keep_made`` of the made
    ones still made: the drift the tests, the docs' report picture and demos replay.

    Each shot moves out along its line from the hoop (staying on the court); its distance,
    shot type (3PT beyond 23.75 ft, or in a corner) and distance zones follow, so the shifted
    shots are valid shots as the feed would send them.

    Example:
        >>> shot = pd.DataFrame({"x": [0], "y": [50], "shot_distance": [5], "made": [1],
        ...     "shot_type": ["2PT Field Goal"], "shot_zone_range": ["Less Than 8 ft."],
        ...     "shot_zone_basic": ["In The Paint (Non-RA)"]})
        >>> moved = shifted_shots(shot, keep_made=1.0).iloc[0]
        >>> int(moved["y"]), int(moved["shot_distance"]), moved["shot_zone_range"]
        (130, 13, '8-16 ft.')
    """
    out = frame.copy()
    x, y = out["x"].to_numpy(np.float64), out["y"].to_numpy(np.float64)
    r = np.hypot(x, y)
    scale = (r + feet * 10.0) / np.maximum(r, 1e-9)
    x = np.clip(np.round(np.where(r > 0, x * scale, 0.0)), -250, 250)
    y = np.clip(np.round(np.where(r > 0, y * scale, feet * 10.0)), -52, 940)
    distance = np.hypot(x, y) / 10.0
    corner = (np.abs(x) >= 220) & (y <= 92)
    three = corner | (distance >= 23.75)
    out["x"], out["y"] = x.astype("int64"), y.astype("int64")
    out["shot_distance"] = np.minimum(np.floor(distance), 100).astype("int64")
    out["shot_type"] = np.where(three, "3PT Field Goal", "2PT Field Goal")
    out["shot_zone_range"] = np.select(
        [distance < 8, distance < 16, distance < 24],
        ["Less Than 8 ft.", "8-16 ft.", "16-24 ft."],
        "24+ ft.",
    )
    out["shot_zone_basic"] = np.select(
        [distance < 4, corner & (x < 0), corner & (x > 0), three, (np.abs(x) < 80) & (y < 143)],
        ["Restricted Area", "Left Corner 3", "Right Corner 3", "Above the Break 3",
         "In The Paint (Non-RA)"],
        "Mid-Range",
    )  # fmt: skip
    kept = np.random.default_rng(seed).random(len(out)) < keep_made
    out["made"] = (out["made"].to_numpy() * kept).astype("int64")
    return out


def reports_folder(home: Path) -> Path:
    """Where the reports are kept: ``<home>/reports``."""
    return Path(home) / REPORTS


def save_report(folder: Path, summary: DriftSummary, html: str, *, keep: int = 20) -> Path:
    """Write ``drift-<UTC time>.html``, ``latest.html`` and ``latest.json`` in ``folder``, and
    delete the oldest reports beyond ``keep``; returns the new report's path (also set as
    ``summary.report``)."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = _utc(summary.at).strftime("%Y%m%dT%H%M%S.%f")[:-3]
    path = folder / f"drift-{stamp}Z.html"
    summary.report = str(path)
    _write(path, html)
    _write(folder / LATEST_HTML, html)
    _write(folder / LATEST_JSON, json.dumps(summary.as_dict(), indent=1))
    for old in sorted(folder.glob("drift-*.html"))[: -max(1, keep)]:
        old.unlink(missing_ok=True)
    return path


def _write(path: Path, text: str) -> None:
    # Readers (the API) see the old file or the new one, never half of one.
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def latest_summary(folder: Path) -> dict[str, Any] | None:
    """The summary of the last report saved in ``folder``, or None when there is none."""
    try:
        return json.loads((folder / LATEST_JSON).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
