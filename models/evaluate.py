"""Evaluating a registered model on labelled shots, replayed in time order.

The shots go through :func:`models.features.build_features` in micro-batches, in the order the
stream would see them, and the model scores each batch as the stream does; the probabilities are
then measured against the outcomes, overall, month by month (so drift shows) and by segment:
season, season type, shot zone and how much of the shooter's history the model had seen (so a
model that is good on average but wrong on playoffs, corner threes or new players shows).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models import registry
from models.features import build_features
from models.form import player_form
from models.metrics import score
from parivision.settings import Settings

# Lower bounds of the player-history bands: the shooter's earlier shots in the evaluated rows.
# Player form features are thin for a player's first shots; these bands show what that costs.
HISTORY_BANDS = (0, 50, 300)


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
    # "season", "season_type", "zone" and "history" -> one row per value, measured like a month.
    segments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
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
            **{k: _json_number(v) for k, v in self.metrics.items()},
            "make_rate": _json_number(self.make_rate),
            "mean_prediction": _json_number(self.mean_prediction),
            "model_name": self.model_name,
            "model_version": self.model_version,
            "candidate": self.candidate,
            "data": self.data,
            "since": self.since,
            "first_date": self.first_date,
            "last_date": self.last_date,
            "rows_in_training_window": self.rows_in_training_window,
            "rows_in_validation_window": self.rows_in_validation_window,
            "segments": {
                kind: [{k: _json_number(v) for k, v in row.items()} for row in rows]
                for kind, rows in self.segments.items()
            },
        }


def _json_number(value: Any) -> Any:
    """A float rounded for the JSON summary; NaN and infinity (ROC-AUC of a one-outcome
    segment) become None, since JSON has no NaN and ``json.dumps`` would write invalid JSON."""
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    return value


def season_of(game_date: np.ndarray) -> np.ndarray:
    """The NBA season label of YYYYMMDD dates: August to December start a season, January to
    July end the one before.

    Example:
        >>> season_of(np.array([20181016, 20190410, 19970601, 20000101])).tolist()
        ['2018-19', '2018-19', '1996-97', '1999-00']
    """
    dates = np.asarray(game_date, dtype=np.int64)
    start = dates // 10_000 - (dates // 100 % 100 < 8)
    return _named(start, lambda year: f"{year}-{(year + 1) % 100:02d}")


def _named(codes: np.ndarray, name: Callable[[int], str]) -> np.ndarray:
    """``name`` of every code, calling it once per distinct code rather than once per shot."""
    distinct, where = np.unique(codes, return_inverse=True)
    return np.array([name(int(code)) for code in distinct], dtype=object)[where]


def history_band(earlier_shots: np.ndarray) -> np.ndarray:
    """The :data:`HISTORY_BANDS` label of each count of a player's earlier shots.

    Example:
        >>> history_band(np.array([0, 49, 50, 299, 300, 5000])).tolist()
        ['0-49', '0-49', '50-299', '50-299', '300+', '300+']
    """
    labels = np.array(history_labels(), dtype=object)
    return labels[np.searchsorted(HISTORY_BANDS, earlier_shots, side="right") - 1]


def history_labels() -> list[str]:
    """The names of the :data:`HISTORY_BANDS`, fewest earlier shots first ("0-49", ...)."""
    ends = [f"-{upper - 1}" for upper in HISTORY_BANDS[1:]] + ["+"]
    return [f"{lower}{end}" for lower, end in zip(HISTORY_BANDS, ends, strict=True)]


def measure(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """Shot count, make rate, mean prediction and :func:`models.metrics.score` of some shots."""
    return {
        "rows": len(y),
        "make_rate": float(y.mean()),
        "mean_prediction": float(p.mean()),
        **score(y, p),
    }


def breakdown(
    kind: str,
    labels: np.ndarray,
    y: np.ndarray,
    p: np.ndarray,
    *,
    by_rows: bool = False,
    order: list[str] | None = None,
) -> list[dict[str, Any]]:
    """One :func:`measure` row per distinct label, under the key ``kind``: in label order, the
    most shots first with ``by_rows``, or in ``order`` (labels absent from the shots skipped)."""
    values, counts = np.unique(labels, return_counts=True)
    if by_rows:
        values = values[np.argsort(-counts, kind="stable")]
    if order is not None:
        present = set(values.tolist())
        values = [value for value in order if value in present]
    return [
        {kind: str(value), **measure(y[labels == value], p[labels == value])} for value in values
    ]


def segments_of(frame: pd.DataFrame, y: np.ndarray, p: np.ndarray) -> dict[str, list[dict]]:
    """The metrics by season, season type, shot zone and player history of the time-sorted
    ``frame``; a player's history counts only his shots earlier in ``frame``."""
    earlier = frame.groupby("player_id", sort=False).cumcount().to_numpy()
    return {
        "season": breakdown("season", season_of(frame["game_date"].to_numpy()), y, p),
        "season_type": breakdown(
            "season_type", frame["season_type"].to_numpy(dtype=object), y, p, by_rows=True
        ),
        "zone": breakdown(
            "zone", frame["shot_zone_basic"].to_numpy(dtype=object), y, p, by_rows=True
        ),
        "history": breakdown("history", history_band(earlier), y, p, order=history_labels()),
    }


def replay_scores(
    champion: registry.Champion,
    frame: pd.DataFrame,
    *,
    batch_size: int = 5000,
    warm: Mapping[str, Mapping[str, Any]] | None = None,
) -> np.ndarray:
    """P(made) for every row of ``frame`` (labelled, in time order), scored in micro-batches in
    row order; each shot's player form comes from the rows before it only, after the player's
    ``warm`` state when given (:func:`models.form.form_states` of a history)."""
    if len(frame) == 0:
        return np.empty(0)
    matrix = build_features(frame, form=player_form(frame, warm) if warm else None)
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
    warm: Mapping[str, Mapping[str, Any]] | None = None,
) -> Evaluation:
    """Score the labelled, time-sorted ``frame`` (from ``since``, a YYYYMMDD date) and measure it;
    players' form starts from ``warm`` (see :func:`replay_scores`), else from nothing.

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
    p = replay_scores(champion, frame, batch_size=batch_size, warm=warm)
    month_of = _named(frame["game_date"].to_numpy() // 100, lambda m: f"{m // 100}-{m % 100:02d}")
    months = breakdown("month", month_of, y, p)
    return Evaluation(
        model_name=champion.name,
        model_version=str(champion.version),
        rows=len(y),
        metrics=score(y, p),
        make_rate=float(y.mean()),
        mean_prediction=float(p.mean()),
        months=months,
        segments=segments_of(frame, y, p),
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
    warm: Mapping[str, Mapping[str, Any]] | None = None,
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
    result = evaluate(champion, frame, since=since, data=data, warm=warm)
    tags = registry.client(settings).get_model_version(settings.registered_model(), version).tags
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
