"""Training the candidates on past shots, keeping the best, registering it in MLflow.

The split is by time: the candidates learn from the earlier shots and are ranked by log loss on
the most recent window (whole game dates), the way the model will be used.  Never a random split:
shots from one game are correlated, and a random split leaks the future into training.

Each candidate is one nested MLflow run under a parent run for the whole comparison: its
parameters, the data window, its validation metrics, and three pictures (calibration, confusion
matrix, feature importance).  The best one's model is logged in its own run and registered.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from models import plots, registry
from models.calibration import Recalibration, recalibrate
from models.candidates import Candidate, make_candidates
from models.data import shot_ids
from models.features import FEATURE_NAMES, FEATURE_SET, build_features
from models.lineage import LINEAGE_TAG, Lineage
from models.metrics import METRIC_NAMES, base_rate_log_loss, score
from models.reference import log_reference, log_validation
from models.shot_model import ShotModel, log_shot_model
from parivision.settings import Settings

PLOT_FILES = ("calibration.png", "confusion_matrix.png", "feature_importance.png")
# Held-out rows used for permutation importance: enough for a stable ranking, fast to score.
IMPORTANCE_ROWS = 5000


@dataclass
class CandidateResult:
    """One fitted candidate and how it did on the validation window."""

    name: str
    label: str
    model: ShotModel
    metrics: dict[str, float]
    params: dict[str, Any]
    importance: np.ndarray
    importance_kind: str
    fit_seconds: float
    run_id: str | None = None


@dataclass
class TrainResult:
    version: str
    run_id: str
    metrics: dict[str, float]
    champion: bool
    rows: int
    candidate: str = ""
    candidates: list[CandidateResult] = field(default_factory=list)
    window: dict[str, int | str] = field(default_factory=dict)
    parent_run_id: str = ""
    recalibration: Recalibration | None = None


def _boundary(keys: np.ndarray, cut: int, tolerance: int) -> int | None:
    """The position nearest ``cut`` where ``keys`` changes, if within ``tolerance`` rows."""
    starts = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    if len(starts) == 0:
        return None
    nearest = int(starts[np.argmin(np.abs(starts - cut))])
    return nearest if abs(nearest - cut) <= tolerance else None


def time_split(
    frame: pd.DataFrame, validation_share: float = 0.15
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The earlier part to learn from, the most recent ``validation_share`` to measure on.

    The cut falls between two game dates (the one nearest the share), so no date and no game is
    on both sides; with too few dates, between two games; failing that, between two rows.
    """
    if not 0.0 < validation_share < 1.0:
        raise ValueError(f"validation share must be between 0 and 1, not {validation_share}")
    if len(frame) < 2:
        raise ValueError(f"{len(frame)} rows cannot be split into training and validation")
    if "game_date" in frame.columns and not frame["game_date"].is_monotonic_increasing:
        order = [c for c in ("game_date", "game_id", "game_event_id") if c in frame.columns]
        frame = frame.sort_values(order, kind="stable").reset_index(drop=True)
    n = len(frame)
    cut = min(n - 1, max(1, int(round(n * (1.0 - validation_share)))))
    tolerance = max(1, int(n * validation_share / 2))
    for column in ("game_date", "game_id"):
        if column in frame.columns:
            found = _boundary(frame[column].to_numpy(), cut, tolerance)
            if found is not None:
                cut = found
                break
    return frame.iloc[:cut], frame.iloc[cut:]


def recency_weights(game_dates: np.ndarray, half_life_days: float | None) -> np.ndarray | None:
    """How much each training shot counts: halved for every ``half_life_days`` it is older than
    the latest one (None: all count the same).

    The league's shots change under the same features (more threes, other action types, a
    different make rate for the same-looking jump shot), so a season long ago says less about the
    next one than last season does, though it still says something.

    Example:
        >>> recency_weights(np.array([20170101, 20171231, 20181231]), 365.0).round(3)
        array([0.25, 0.5 , 1.  ])
    """
    if half_life_days is None:
        return None
    if not half_life_days > 0:
        raise ValueError(f"the half-life must be a positive number of days, not {half_life_days}")
    days = pd.to_datetime(pd.Series(game_dates).astype(str), format="%Y%m%d")
    age = (days.max() - days).dt.days.to_numpy(dtype=np.float64)
    return np.power(0.5, age / half_life_days)


def data_window(train: pd.DataFrame, valid: pd.DataFrame) -> dict[str, int]:
    """Row counts and first/last game dates of both sides, as logged with every run."""
    window = {"train_rows": len(train), "valid_rows": len(valid)}
    if "game_date" in train.columns:
        window |= {
            "train_from": int(train["game_date"].min()),
            "train_to": int(train["game_date"].max()),
            "valid_from": int(valid["game_date"].min()),
            "valid_to": int(valid["game_date"].max()),
        }
    return window


def fit_candidate(
    candidate: Candidate,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    weight: np.ndarray | None = None,
) -> CandidateResult:
    """Fit one candidate on the training rows (each counting ``weight``) and measure it on the
    validation rows."""
    started = time.perf_counter()
    model = candidate.fit(x_train, y_train, weight)
    fit_seconds = time.perf_counter() - started
    metrics = score(y_valid, model.predict(x_valid))
    rng = np.random.default_rng(7)
    sample = np.sort(rng.choice(len(x_valid), min(IMPORTANCE_ROWS, len(x_valid)), replace=False))
    importance, kind = candidate.importance(model, x_valid[sample], y_valid[sample])
    return CandidateResult(
        name=candidate.name,
        label=candidate.label,
        model=model,
        metrics=metrics,
        params={**candidate.params(), **candidate.fit_info},
        importance=np.asarray(importance, dtype=np.float64),
        importance_kind=kind,
        fit_seconds=fit_seconds,
    )


def write_plots(
    result: CandidateResult, x_valid: np.ndarray, y_valid: np.ndarray, folder: Path
) -> list[Path]:
    """The three pictures of one candidate on the validation window, as PNG files in ``folder``."""
    p = result.model.predict(x_valid)
    calibration, confusion, importance = (folder / name for name in PLOT_FILES)
    return [
        plots.plot_calibration(y_valid, p, calibration, title=f"{result.label}: calibration"),
        plots.plot_confusion(y_valid, p, confusion, title=f"{result.label}: confusion at 0.5"),
        plots.plot_importance(
            FEATURE_NAMES,
            result.importance,
            importance,
            kind=result.importance_kind,
            title=f"{result.label}: feature importance",
        ),
    ]


def _log_candidate(
    result: CandidateResult,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    *,
    window: dict[str, Any],
    base_rate: float,
) -> None:
    import mlflow

    mlflow.log_params({**result.params, **window})
    mlflow.log_metrics(
        {**result.metrics, "base_rate_log_loss": base_rate, "fit_seconds": result.fit_seconds}
    )
    mlflow.set_tags(
        {"candidate": result.name, "feature_set": FEATURE_SET, "model_type": result.name}
    )
    mlflow.log_dict(
        {
            "kind": result.importance_kind,
            "values": dict(zip(FEATURE_NAMES, result.importance.tolist(), strict=True)),
        },
        "feature_importance.json",
    )
    with tempfile.TemporaryDirectory(prefix="parivision-plots-") as folder:
        for path in write_plots(result, x_valid, y_valid, Path(folder)):
            mlflow.log_artifact(str(path), artifact_path="plots")


def _recalibration_metrics(found: Recalibration) -> dict[str, float]:
    """The later half of the validation window before and after recalibration, as logged."""
    out: dict[str, float] = {"recalibrated": float(found.calibration is not None)}
    if found.calibration is not None:
        out |= {"platt_slope": found.calibration[0], "platt_intercept": found.calibration[1]}
    for side, measured in (("raw", found.before), ("recalibrated", found.after)):
        for name in ("log_loss", "ece") if measured else ():
            out[f"holdout_{name}_{side}"] = measured[name]
    return out


def _game_dates(frame: pd.DataFrame, rows: int) -> np.ndarray:
    if "game_date" in frame.columns:
        return frame["game_date"].to_numpy(dtype=np.int64)
    return np.zeros(rows, dtype=np.int64)


def _progress(console: Console | None) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} candidates"),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
        transient=False,
    )


def train_and_register(
    settings: Settings,
    frame: pd.DataFrame,
    *,
    data_name: str,
    validation_share: float = 0.15,
    make_champion: bool | None = None,
    candidates: Sequence[str] | None = None,
    half_life_days: float | None = None,
    lineage: Lineage | None = None,
    console: Console | None = None,
) -> TrainResult:
    """Fit the candidates on ``frame`` (time-sorted, with ``made``), register the best.

    Every candidate is logged as a nested MLflow run; the one with the lowest validation log loss
    becomes a new version of ``settings.registered_model()``, tagged with its candidate name,
    feature set and metrics.  ``make_champion`` None means: the new version becomes champion
    only when there is none yet, or the champion was trained on another feature set (deciding
    between a champion and a challenger belongs to promotion).  ``half_life_days`` weights the
    training shots by recency (:func:`recency_weights`; None: ``settings.train_half_life_days``,
    0: no weighting); validation shots all count the same.

    ``lineage`` says which sources and filters ``frame`` came from; it is recorded on the version
    (tag ``lineage``), so a retrain can learn the same shots again (:mod:`models.lineage`).  A
    version without one (a frame built by hand) is retrained from the store only when asked
    (``PARIVISION_RETRAIN_STORE_ONLY``).  The validation window is logged with the version
    (:func:`models.reference.log_validation`): the fixed set a challenger of it must not be
    worse on.
    """
    import mlflow

    from infra.mlflow_store import configure_mlflow

    if len(frame) < 200:
        raise ValueError(f"{data_name}: {len(frame)} labelled shots is too few to train on")
    chosen = make_candidates(candidates)
    train, valid = time_split(frame, validation_share)
    # Features over both windows in one pass: a validation shot's player form comes from every
    # earlier shot, as it would in the stream.
    matrix = build_features(pd.concat([train, valid]))
    x_train, y_train = matrix[: len(train)], train["made"].to_numpy(dtype=np.int64)
    x_valid, y_valid = matrix[len(train) :], valid["made"].to_numpy(dtype=np.int64)
    if len(np.unique(y_train)) < 2:
        raise ValueError(f"{data_name}: the training window has only one outcome")
    if half_life_days is None:
        half_life_days = settings.train_half_life_days
    half_life_days = half_life_days or None
    if half_life_days is not None and "game_date" not in train.columns:
        raise ValueError(f"{data_name}: weighting by recency needs each shot's game_date")
    weight = None
    if half_life_days is not None:
        weight = recency_weights(train["game_date"].to_numpy(), half_life_days)
    window = data_window(train, valid)
    base_rate = base_rate_log_loss(y_train, y_valid)
    configure_mlflow(settings)

    results: list[CandidateResult] = []
    with mlflow.start_run(run_name=f"train-{data_name}") as parent:
        mlflow.log_params(
            {
                "data": data_name,
                "validation_share": validation_share,
                "candidates": ",".join(c.name for c in chosen),
                "half_life_days": half_life_days or "none",
                **window,
            }
        )
        mlflow.set_tags({"feature_set": FEATURE_SET})
        with _progress(console) as progress:
            task = progress.add_task("training", total=len(chosen))
            for candidate in chosen:
                progress.update(task, description=f"training {candidate.label}")
                result = fit_candidate(candidate, x_train, y_train, x_valid, y_valid, weight)
                with mlflow.start_run(run_name=candidate.name, nested=True) as run:
                    _log_candidate(result, x_valid, y_valid, window=window, base_rate=base_rate)
                result.run_id = run.info.run_id
                results.append(result)
                progress.advance(task)
            progress.update(task, description="trained")
        best = min(results, key=lambda r: r.metrics["log_loss"])
        metrics = {**best.metrics, "base_rate_log_loss": base_rate}
        # The most recent shots may say the level moved: ship the best one recalibrated on them
        # when that helps on shots the calibration has not seen.
        recalibration = recalibrate(best.model.predict_raw(x_valid), y_valid)
        best.model.calibration = recalibration.calibration
        metrics |= _recalibration_metrics(recalibration)
        mlflow.log_metrics(metrics)
        mlflow.set_tags({"candidate": best.name, "recalibration": recalibration.reason})
        with mlflow.start_run(run_id=best.run_id, nested=True):
            info = log_shot_model(
                best.model, x_valid, registered_model_name=settings.registered_model()
            )
            # What drift checks compare recent shots with while this version is champion.
            log_reference(x_train, y_train)
            # What a challenger of this version must not be worse on.
            log_validation(
                x_valid, y_valid, shot_ids(valid).to_numpy(), _game_dates(valid, len(valid))
            )

    version = str(info.registered_model_version)
    tags = {
        "candidate": best.name,
        "feature_set": FEATURE_SET,
        "data": data_name,
        "recalibrated": str(recalibration.calibration is not None).lower(),
        **{name: f"{best.metrics[name]:.6f}" for name in METRIC_NAMES},
        **{key: str(value) for key, value in window.items()},
    }
    if lineage is not None:
        if half_life_days and not lineage.half_life_days:
            lineage = Lineage(lineage.sources, half_life_days)
        tags[LINEAGE_TAG] = lineage.to_json()
    client = registry.client(settings)
    for key, value in tags.items():
        client.set_model_version_tag(settings.registered_model(), version, key, value)
    client.update_model_version(
        settings.registered_model(),
        version,
        description=(
            f"{best.label}, the lowest validation log loss of "
            f"{', '.join(r.name for r in results)} on {data_name}"
        ),
    )
    if make_champion is None:
        # No champion, or one this code can no longer serve (trained on another feature set).
        current = registry.champion_version(settings)
        make_champion = current is None or registry.stale_feature_set(settings, current) is not None
    if make_champion:
        registry.set_champion(settings, version)
    return TrainResult(
        version=version,
        run_id=str(best.run_id),
        metrics=metrics,
        champion=make_champion,
        rows=len(frame),
        candidate=best.name,
        candidates=results,
        window=window,
        parent_run_id=parent.info.run_id,
        recalibration=recalibration,
    )
