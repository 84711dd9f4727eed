"""River online learners: they learn from every outcome as it arrives.

Every learner follows River's protocol (``predict_proba_one`` before ``learn_one``), so its live
metrics are progressive validation: each shot is predicted before the learner has seen its
outcome, exactly like the champion.

A new learner is one factory added to :data:`LEARNERS`; the stream runs every learner named in
``Settings.online_learners`` side by side on the same shots.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from river import compose, forest, linear_model, metrics, optim, preprocessing
from river.base import Classifier


def scaled_logistic_regression() -> Classifier:
    """Standardised features into a logistic regression; cheap enough for every shot."""
    return compose.Pipeline(
        preprocessing.StandardScaler(),
        linear_model.LogisticRegression(optimizer=optim.SGD(0.005), l2=1e-4),
    )


def adaptive_forest() -> Classifier:
    """An adaptive random forest of three Hoeffding trees: each grows splits as evidence
    arrives and is replaced by a background tree when ADWIN sees its error drift, so the forest
    follows changes in how shots go in; it finds the interactions a linear model cannot.

    Leaves predict class frequencies (``mc``): River's default naive-Bayes-adaptive leaves
    are overconfident on these correlated features (log loss above 1.0 on real shots), which
    fair odds cannot afford. Measured on real shots, predict + learn per shot: ~240-380 µs here,
    against ~50 µs for :func:`scaled_logistic_regression`; a single Hoeffding adaptive tree is
    cheaper (~150 µs) but barely beats a coin (ROC-AUC 0.53 after 3,000 shots).
    """
    return forest.ARFClassifier(n_models=3, leaf_prediction="mc", seed=42)


# Features a shot may lack (the player's first shot in a game has no previous one), as the
# online learners see them: a value no real shot has instead of an absent key.  River's trees
# otherwise send a shot missing a split feature down every branch below (an adaptive forest
# then costs ~200 us a shot instead of ~45), and both learners' log loss was a little better
# with the sentinels (0.6601 against 0.6707 for the forest, 0.6471 against 0.6477 for the
# logistic regression, progressively on 10,000 real shots after 20,000).
MISSING_SENTINELS = {"prev_made_in_game": -1.0, "secs_since_prev_in_game": 3000.0}


def learner_features(features: dict[str, float]) -> dict[str, float]:
    """What the online learners see of a shot's features: absent in-game values filled in.

    Example:
        >>> learner_features({"x": 1.0})["prev_made_in_game"]
        -1.0
    """
    if all(name in features for name in MISSING_SENTINELS):
        return features
    return {**MISSING_SENTINELS, **features}


LEARNERS: dict[str, Callable[[], Classifier]] = {
    "logreg": scaled_logistic_regression,
    "arf": adaptive_forest,
}


def make_learner(name: str) -> Classifier:
    try:
        return LEARNERS[name]()
    except KeyError:
        raise ValueError(f"unknown online learner {name!r}; known: {', '.join(LEARNERS)}") from None


class LiveMetrics:
    """Progressive log loss and ROC-AUC for one model on the labelled shots it scored."""

    def __init__(self) -> None:
        self.log_loss = metrics.LogLoss()
        self.roc_auc = metrics.ROCAUC()
        self.n = 0

    def update(self, made: int, p: float) -> None:
        y = bool(made)
        self.log_loss.update(y, {True: p, False: 1.0 - p})
        self.roc_auc.update(y, {True: p, False: 1.0 - p})
        self.n += 1

    def as_dict(self) -> dict[str, float]:
        return {"n": self.n, "log_loss": self.log_loss.get(), "roc_auc": self.roc_auc.get()}


class RollingQuality:
    """Log loss, ROC-AUC and Brier score over the ``window`` most recent labelled shots.

    :class:`LiveMetrics` measure a model since the worker started; an operator watching for
    decay needs the recent window, so a model that got worse shows it within ``window`` shots.

    Example:
        >>> quality = RollingQuality(window=4)
        >>> for made, p in [(1, 0.9), (0, 0.1), (1, 0.2), (0, 0.8), (1, 0.7), (0, 0.3)]:
        ...     quality.update(made, p)
        >>> summary = quality.summary()
        >>> summary["n"], round(summary["brier"], 3), summary["roc_auc"]
        (4, 0.365, 0.25)
    """

    def __init__(self, window: int = 2000) -> None:
        self.window = max(1, int(window))
        self._y = np.zeros(self.window, dtype=np.int8)
        self._p = np.zeros(self.window, dtype=np.float64)
        self._next = 0
        self.n = 0

    def update(self, made: int, p: float) -> None:
        self._y[self._next] = 1 if made else 0
        self._p[self._next] = p
        self._next = (self._next + 1) % self.window
        self.n = min(self.n + 1, self.window)

    def summary(self) -> dict[str, float]:
        """``n`` and the three scores (NaN where undefined: no shots, or one class only)."""
        nan = float("nan")
        if not self.n:
            return {"n": 0, "log_loss": nan, "roc_auc": nan, "brier": nan}
        y, p = self._y[: self.n].astype(np.float64), np.clip(self._p[: self.n], 1e-15, 1 - 1e-15)
        log_loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
        brier = float(np.mean((p - y) ** 2))
        return {"n": self.n, "log_loss": log_loss, "roc_auc": _roc_auc(y, p), "brier": brier}


def _roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC-AUC by ranks (ties share their mean rank); NaN when only one class is present."""
    positives = int(y.sum())
    negatives = len(y) - positives
    if not positives or not negatives:
        return float("nan")
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(len(p), dtype=np.float64)
    sorted_p = p[order]
    # Mean rank for each run of equal probabilities.
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_p)) + 1]
    ends = np.r_[starts[1:], len(p)]
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


# Bumped when the pickled checkpoint layout changes; an older one is then refused, not misread.
# 2: the learners see :func:`learner_features`; those that learned without it start afresh.
CHECKPOINT_FORMAT = 2


def checkpoint_path(settings: Any) -> Path:
    """Where a stream group's learners are saved (one file per group, last writer wins); the
    stream writes it, the API reads it to answer with the same learners."""
    return settings.resolved_home() / "online" / f"{settings.stream_group()}.pkl"


def read_checkpoint(data: bytes) -> dict[str, dict[str, Any]]:
    """The learners in a checkpoint: ``{name: {"model", "metrics", "learned"}}``.

    Raises:
        ValueError: the data is not a checkpoint this version can read.
    """
    try:
        state = pickle.loads(data)  # noqa: S301 - our own file, under the project home
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"checkpoint format {state.get('format')!r}")
        learners = dict(state["learners"])
        for entry in learners.values():
            if not isinstance(entry["metrics"], LiveMetrics) or not hasattr(
                entry["model"], "learn_one"
            ):
                raise ValueError("a learner entry is not a River model and its metrics")
    except ValueError:
        raise
    except Exception as error:  # truncated, not a pickle, another layout
        raise ValueError(f"{type(error).__name__}: {error}") from error
    return learners
