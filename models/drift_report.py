"""Drift checks: data drift of recent shots against a reference, and the champion's quality on
the recent shots that are labelled, as Evidently's presets find them.

What Evidently's two presets would say, on one recent window:

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

:func:`check_drift` computes those numbers directly (:mod:`models.drift_stats`, tested equal to
Evidently's own) in milliseconds, where running the presets and drawing their report took
seconds; the retrain loop keeps each check's summary and frames (:mod:`models.drift_checks`)
and Evidently's HTML report is drawn from them when someone asks for it.  :func:`evaluate`
does both at once.  The summaries and reports live under the home's ``reports/`` folder, with
a ``latest.json`` summary, which the API serves at ``/reports/drift.json`` (and the report at
``/reports/drift``).

Evidently is imported only where it runs (:mod:`models.drift_evidently`): it is heavy (plotly,
a web server, statsmodels), the stream worker never loads it, and the API imports the retrain
loop's module without needing it.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.drift_stats import FeatureScore, columns_to_test, dataset_drift, quality
from models.features import CATEGORICAL, FEATURE_NAMES
from models.reference import Reference
from parivision.settings import Settings

REPORTS = "reports"
LATEST_HTML, LATEST_JSON = "latest.html", "latest.json"
# Evidently's dataset drift verdict: this share of drifted features or more.  Of the 39
# features, 22 (the action words, period, clock, playoffs, angle) stay put when where and how
# well shots are taken changes, so half of them never drift together; see tests/unit/models.
DRIFT_SHARE = 0.25
# Fewer labelled shots than this (or only one outcome) and the quality part is left out.
MIN_LABELLED = 100
# A check's files: drift-<UTC time>Z.html, .json, .recent.parquet (see models.drift_checks).
CHECK_FILE = re.compile(r"^(drift-\d{8}T\d{6}\.\d{3}Z)\.")


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


@dataclass(frozen=True)
class DriftInputs:
    """What a check was computed from, kept to draw its Evidently report when asked for."""

    recent: pd.DataFrame  # FEATURE_NAMES, with outcome and p_champion where known
    reference: pd.DataFrame  # FEATURE_NAMES
    min_labelled: int = MIN_LABELLED


def labelled_shots(recent: pd.DataFrame) -> pd.DataFrame:
    """The recent shots with an outcome and a probability."""
    wanted = ["outcome", "p_champion"]
    return recent.dropna(subset=wanted) if set(wanted) <= set(recent) else recent.iloc[0:0]


def measurable(labelled: pd.DataFrame, min_labelled: int = MIN_LABELLED) -> bool:
    """Whether the labelled shots are enough, and of both outcomes, to measure quality on."""
    return len(labelled) >= min_labelled and labelled["outcome"].nunique() == 2


def summarize(
    recent: pd.DataFrame,
    reference: Reference,
    *,
    labelled_rows: int,
    share: float,
    drift_share: float,
    scores: dict[str, FeatureScore],
    columns: Sequence[str],
    quality: dict[str, float],
    champion_version: str | None,
    at: float,
) -> DriftSummary:
    """One check's summary from its numbers (the tested ``columns``, their ``scores``, the
    drifted ``share`` and the quality measured)."""
    return DriftSummary(
        at=at,
        reference=reference.kind,
        reference_description=reference.description,
        reference_rows=len(reference.frame),
        recent_rows=len(recent),
        labelled_rows=labelled_rows,
        drift_share=share,
        drift_threshold=drift_share,
        dataset_drift=bool(share >= drift_share),
        drifted=[name for name in FEATURE_NAMES if name in scores and scores[name].drifted],
        features=scores,
        untested=[name for name in FEATURE_NAMES if name not in columns],
        quality=quality,
        champion_version=champion_version,
    )


def check_drift(
    recent: pd.DataFrame,
    reference: Reference,
    *,
    drift_share: float = DRIFT_SHARE,
    min_labelled: int = MIN_LABELLED,
    champion_version: str | None = None,
    at: float | None = None,
) -> tuple[DriftSummary, DriftInputs]:
    """The drift and quality numbers of Evidently's presets, computed directly; the summary
    and what it was computed from (for :func:`models.drift_evidently.render_html`).

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
    # Evidently refuses a column with no value on one side (a feature the store never had).
    columns = columns_to_test(recent, reference.frame, FEATURE_NAMES)
    share, scores = dataset_drift(recent, reference.frame, columns, CATEGORICAL)
    labelled = labelled_shots(recent)
    measured: dict[str, float] = {}
    if measurable(labelled, min_labelled):
        measured = quality(labelled["outcome"], labelled["p_champion"])
    summary = summarize(
        recent,
        reference,
        labelled_rows=len(labelled),
        share=share,
        drift_share=drift_share,
        scores=scores,
        columns=columns,
        quality=measured,
        champion_version=champion_version,
        at=at,
    )
    kept = [name for name in (*FEATURE_NAMES, "outcome", "p_champion") if name in recent]
    inputs = DriftInputs(recent[kept], reference.frame[list(FEATURE_NAMES)], min_labelled)
    return summary, inputs


def evaluate(
    recent: pd.DataFrame,
    reference: Reference,
    *,
    drift_share: float = DRIFT_SHARE,
    min_labelled: int = MIN_LABELLED,
    champion_version: str | None = None,
    at: float | None = None,
) -> tuple[DriftSummary, str]:
    """:func:`check_drift` and Evidently's HTML report of it at once (its arguments)."""
    from models.drift_evidently import render_html

    summary, inputs = check_drift(
        recent,
        reference,
        drift_share=drift_share,
        min_labelled=min_labelled,
        champion_version=champion_version,
        at=at,
    )
    return summary, render_html(summary, inputs)


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


def reports_folder(where: Settings | Path) -> Path:
    """Where a deployment's reports are kept (``Settings.deployment_dir``); given a bare home
    folder, the default deployment's: ``<home>/reports``."""
    if isinstance(where, Settings):
        return where.deployment_dir(REPORTS)
    return Path(where) / REPORTS


def check_name(at: float) -> str:
    """The name of the check at ``at`` (its files' names up to the suffix): ``drift-<UTC>Z``."""
    return f"drift-{_utc(at).strftime('%Y%m%dT%H%M%S.%f')[:-3]}Z"


def save_report(folder: Path, summary: DriftSummary, html: str, *, keep: int = 20) -> Path:
    """Write a drawn report as ``drift-<UTC time>Z.html``, ``latest.html`` and ``latest.json``
    in ``folder``, and delete the oldest checks beyond ``keep``; returns the new report's path
    (also set as ``summary.report``).  The retrain loop saves its checks undrawn
    (:func:`models.drift_checks.save_check`)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{check_name(summary.at)}.html"
    summary.report = str(path)
    write_atomic(path, html)
    write_atomic(folder / LATEST_HTML, html)
    write_atomic(folder / LATEST_JSON, json.dumps(summary.as_dict(), indent=1))
    prune_checks(folder, keep)
    return path


def prune_checks(folder: Path, keep: int) -> None:
    """Delete the files of every check in ``folder`` but the last ``keep`` (at least one)."""
    checks: dict[str, list[Path]] = {}
    for path in folder.glob("drift-*"):
        named = CHECK_FILE.match(path.name)
        if named:
            checks.setdefault(named.group(1), []).append(path)
    for name in sorted(checks)[: -max(1, keep)]:
        for path in checks[name]:
            path.unlink(missing_ok=True)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole: readers (the API) see the old file or the new one,
    never half of one."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def latest_summary(folder: Path) -> dict[str, Any] | None:
    """The summary of the last report saved in ``folder``, or None when there is none."""
    try:
        return json.loads((folder / LATEST_JSON).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
