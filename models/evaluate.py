"""Evaluating a registered model on labelled shots, replayed in time order.

The shots go through :func:`models.features.build_features` in micro-batches, in the order the
stream would see them, and the model scores each batch as the stream does; the probabilities are
then measured against the outcomes, overall and month by month (so drift shows).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models import registry
from models.features import build_features
from models.metrics import score
from parivision.settings import Settings


class ModelUnavailableError(LookupError):
    """The tracking store cannot be reached, or the requested model is not in it."""


@dataclass
class Evaluation:
    """Metrics of one model version on one stretch of shots."""

    model_name: str
    model_version: str
    rows: int
    metrics: dict[str, float]
    make_rate: float
    mean_prediction: float
    months: list[dict[str, Any]] = field(default_factory=list)
    candidate: str = ""
    data: str = ""
    since: int | None = None
    first_date: int | None = None
    last_date: int | None = None
    # Rows dated within the model's training window (fitted on) and validation window (chosen
    # on): if the data is the training file, metrics on them are in-sample and optimistic.
    rows_in_training_window: int | None = None
    rows_in_validation_window: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            **{k: round(v, 6) for k, v in self.metrics.items()},
            "make_rate": round(self.make_rate, 6),
            "mean_prediction": round(self.mean_prediction, 6),
            "model_name": self.model_name,
            "model_version": self.model_version,
            "candidate": self.candidate,
            "data": self.data,
            "since": self.since,
            "first_date": self.first_date,
            "last_date": self.last_date,
            "rows_in_training_window": self.rows_in_training_window,
            "rows_in_validation_window": self.rows_in_validation_window,
        }


def replay_scores(
    champion: registry.Champion, frame: pd.DataFrame, *, batch_size: int = 5000
) -> np.ndarray:
    """P(made) for every row of ``frame`` (labelled, in time order), scored in micro-batches in
    row order; each shot's player form comes from the rows before it only."""
    if len(frame) == 0:
        return np.empty(0)
    matrix = build_features(frame)
    return np.concatenate(
        [
            champion.predict(matrix[start : start + batch_size])
            for start in range(0, len(frame), batch_size)
        ]
    )


def evaluate(
    champion: registry.Champion,
    frame: pd.DataFrame,
    *,
    since: int | None = None,
    batch_size: int = 5000,
    data: str = "",
) -> Evaluation:
    """Score the labelled, time-sorted ``frame`` (from ``since``, a YYYYMMDD date) and measure it.

    Raises:
        ValueError: when no labelled shot is left to measure.
    """
    if since is not None:
        frame = frame[frame["game_date"] >= since]
    if "made" not in frame.columns or len(frame) == 0:
        where = f" on or after {since}" if since is not None else ""
        raise ValueError(f"{data or 'the data'}: no labelled shots{where} to evaluate on")
    if not frame["game_date"].is_monotonic_increasing:
        order = [c for c in ("game_date", "game_id", "game_event_id") if c in frame.columns]
        frame = frame.sort_values(order, kind="stable")
    y = frame["made"].to_numpy(dtype=np.int64)
    p = replay_scores(champion, frame, batch_size=batch_size)
    months = []
    month_of = frame["game_date"].to_numpy() // 100
    for month in np.unique(month_of):
        rows = month_of == month
        months.append(
            {
                "month": f"{month // 100}-{month % 100:02d}",
                "rows": int(rows.sum()),
                "make_rate": float(y[rows].mean()),
                "mean_prediction": float(p[rows].mean()),
                **score(y[rows], p[rows]),
            }
        )
    return Evaluation(
        model_name=champion.name,
        model_version=str(champion.version),
        rows=len(y),
        metrics=score(y, p),
        make_rate=float(y.mean()),
        mean_prediction=float(p.mean()),
        months=months,
        candidate=getattr(champion.model, "candidate", "lightgbm"),
        data=data,
        since=since,
        first_date=int(frame["game_date"].iloc[0]),
        last_date=int(frame["game_date"].iloc[-1]),
    )


def _check_store(settings: Settings) -> None:
    """Fail with what to do when the tracking store is absent or does not answer."""
    from infra.mlflow_store import probe

    uri = settings.mlflow()
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.exists():  # opening it would silently create an empty store
            raise ModelUnavailableError(
                f"no MLflow store at {path}: run `parivision train` first, or set "
                "PARIVISION_MLFLOW_TRACKING_URI / PARIVISION_HOME to where the models are"
            )
    problem = probe(uri)
    if problem:
        raise ModelUnavailableError(
            f"the MLflow store at {uri} cannot be used: {problem}; check "
            "PARIVISION_MLFLOW_TRACKING_URI or start it with `parivision up`"
        )


def evaluate_registered(
    settings: Settings,
    frame: pd.DataFrame,
    *,
    model: str | None = None,
    since: int | None = None,
    data: str = "",
) -> Evaluation:
    """Evaluate a registered version: ``model`` is a version number or an alias (default champion).

    Raises:
        ModelUnavailableError: the store is unreachable, or has no such version or alias.
        ValueError: the version was trained on other features, or no shots are left to score.
    """
    _check_store(settings)
    try:
        version = registry.resolve_version(settings, model or settings.champion_alias)
    except LookupError as error:
        raise ModelUnavailableError(str(error)) from None
    champion = registry.load_version(settings, version)
    result = evaluate(champion, frame, since=since, data=data)
    tags = registry.client(settings).get_model_version(settings.model_name, version).tags
    result.candidate = tags.get("candidate", result.candidate)
    dates = frame["game_date"].to_numpy()
    if since is not None:
        dates = dates[dates >= since]

    def inside(prefix: str) -> int | None:
        start, end = tags.get(f"{prefix}_from"), tags.get(f"{prefix}_to")
        if not (start and end):
            return None
        return int(((dates >= int(start)) & (dates <= int(end))).sum())

    result.rows_in_training_window = inside("train")
    result.rows_in_validation_window = inside("valid")
    return result
