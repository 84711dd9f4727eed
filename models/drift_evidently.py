"""Evidently's own run of a drift check: its ``DataDriftPreset`` and ``ClassificationPreset`` on
the recent shots and the reference, and the HTML report they render.

The retrain loop's numbers come from :mod:`models.drift_stats` (the same tests, checked against
these presets in tests/unit/models/test_drift_stats.py); Evidently runs only to draw the report
someone asks for (:mod:`models.drift_checks`), in the tests, and in ``bench/drift_check.py``.

Evidently is imported inside the functions: it is heavy (plotly, a web server, statsmodels),
the stream worker never loads it, and the API and the retrain loop import this module's
callers without needing it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from models.drift_stats import FeatureScore
from models.features import CATEGORICAL, FEATURE_NAMES

if TYPE_CHECKING:
    from models.drift_report import DriftInputs, DriftSummary

# Evidently's classification metrics by type, as the summary and the metrics name them.
QUALITY = {
    "Accuracy": "accuracy",
    "Precision": "precision",
    "Recall": "recall",
    "F1Score": "f1",
    "RocAuc": "roc_auc",
    "LogLoss": "log_loss",
}


def _definition(columns: Iterable[str]):
    from evidently import DataDefinition

    columns = list(columns)
    return DataDefinition(
        numerical_columns=[c for c in columns if c not in CATEGORICAL],
        categorical_columns=[c for c in columns if c in CATEGORICAL],
    )


def drift_snapshot(
    recent: pd.DataFrame, reference: pd.DataFrame, columns: Sequence[str], drift_share: float
):
    """Evidently's ``DataDriftPreset`` (with its tests) on ``columns``, recent against reference."""
    from evidently import Dataset, Report
    from evidently.presets import DataDriftPreset

    columns = list(columns)
    definition = _definition(columns)
    return Report(
        [DataDriftPreset(columns=columns, drift_share=drift_share)], include_tests=True
    ).run(
        Dataset.from_pandas(recent[columns], data_definition=definition),
        Dataset.from_pandas(reference[columns], data_definition=definition),
    )


def drift_numbers(snapshot) -> tuple[float, dict[str, FeatureScore]]:
    """The share of drifted columns and each column's test, read from a drift snapshot."""
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
    return share, {name: scores[name] for name in FEATURE_NAMES if name in scores}


def quality_snapshot(labelled: pd.DataFrame):
    """Evidently's ``ClassificationPreset`` on the labelled shots: target ``outcome``,
    probability ``p_champion``."""
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
        return Report([ClassificationPreset()]).run(
            Dataset.from_pandas(data.reset_index(drop=True), data_definition=definition), None
        )


def quality_numbers(snapshot) -> dict[str, float]:
    """Accuracy, precision, recall, F1, ROC-AUC and log loss, read from a quality snapshot."""
    quality = {}
    for metric in snapshot.dict()["metrics"]:
        name = QUALITY.get(metric["config"]["type"].rsplit(":", 1)[-1])
        if name and isinstance(metric["value"], int | float):
            quality[name] = float(metric["value"])
    return quality


def render_html(summary: DriftSummary, inputs: DriftInputs) -> str:
    """Evidently's report of one check: its presets run again on the frames the check was
    computed from, under a header with the check's summary."""
    from models.drift_report import labelled_shots, measurable

    columns = [name for name in FEATURE_NAMES if name in summary.features]
    drift = drift_snapshot(inputs.recent, inputs.reference, columns, summary.drift_threshold)
    labelled = labelled_shots(inputs.recent)
    quality = quality_snapshot(labelled) if measurable(labelled, inputs.min_labelled) else None
    return report_html(summary, drift, quality, inputs.min_labelled)


def report_html(summary: DriftSummary, drift, quality, min_labelled: int) -> str:
    """The HTML report: a header with the summary, then the drift snapshot's widgets and the
    quality snapshot's (or why there is none), then their tests."""
    from evidently.core.metric_types import render_widgets
    from evidently.legacy.renderers.html_widgets import CounterData, counter, group_widget

    verdict = "detected" if summary.dataset_drift else "not detected"
    champion = f"v{summary.champion_version}" if summary.champion_version else "none"
    at = datetime.fromtimestamp(summary.at, tz=UTC)
    head = counter(
        title=f"PariVision drift check, {at:%Y-%m-%d %H:%M:%S} UTC: recent shots "
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
    widgets: list[Any] = [
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
