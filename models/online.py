"""River online learners: they learn from every outcome as it arrives.

Every learner follows River's protocol (``predict_proba_one`` before ``learn_one``), so its live
metrics are progressive validation: each shot is predicted before the learner has seen its
outcome, exactly like the champion.

A new learner is one factory added to :data:`LEARNERS`; the stream runs every learner named in
``Settings.online_learners`` side by side on the same shots.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from river import compose, forest, linear_model, metrics, optim, preprocessing
from river.base import Classifier

from models.form import FORM_NAMES
from models.online_bias import CHAMPION_LOGIT, PLAYER_ID, TEAM_ID, ChampionBias


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


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1.0 - 1e-6)
    return math.log(p / (1.0 - p))


class OnTopOfChampion(Classifier):
    """A logistic regression on the champion's logit and the shot's player form, starting as
    the champion itself and moving only as outcomes arrive.

    ``p = sigmoid(a * logit(p_champion) + b + sum(w_i * z_i))`` with ``a = 1``, ``b = 0`` and
    ``w = 0`` at first, so it is never worse than the champion before it has learned anything;
    ``z`` is each of ``features`` standardised by its running mean and variance.  Learning by
    SGD on log loss, it follows what the champion cannot: a new season's make rate (``b``), a
    champion too sure or too timid (``a``), and how far a player's form says more now than it
    did in training (``w``).  The two from-scratch learners trail the champion by 0.02-0.03 log
    loss after 100,000 shots; this one starts at the champion's and adapts within thousands.

    Example:
        >>> learner = OnTopOfChampion()
        >>> shot = {CHAMPION_LOGIT: 0.0, "player_rate": 0.5}
        >>> round(learner.predict_proba_one(shot)[True], 3)     # the champion's 0.5
        0.5
        >>> for _ in range(2_000):
        ...     learner.learn_one(shot, False)                  # but these all miss
        >>> learner.predict_proba_one(shot)[True] < 0.3
        True
    """

    uses_champion = True

    def __init__(
        self,
        features: tuple[str, ...] = FORM_NAMES,
        lr: float = 0.0005,
        intercept_lr: float = 0.002,
        l2: float = 1e-4,
    ) -> None:
        self.features = tuple(features)
        self.lr = lr
        self.intercept_lr = intercept_lr
        self.l2 = l2
        self.slope = 1.0
        self.intercept = 0.0
        self.weights = dict.fromkeys(self.features, 0.0)
        # Running mean and sum of squared deviations (Welford) of each feature.
        self._n = 0
        self._mean = dict.fromkeys(self.features, 0.0)
        self._m2 = dict.fromkeys(self.features, 0.0)

    def _z(self, x: dict) -> dict[str, float]:
        out = {}
        for name in self.features:
            value = x.get(name)
            if value is None or value != value or self._n < 2:
                out[name] = 0.0
                continue
            sd = math.sqrt(self._m2[name] / (self._n - 1))
            out[name] = (value - self._mean[name]) / sd if sd > 0 else 0.0
        return out

    def _margin(self, x: dict, z: dict[str, float]) -> float:
        margin = self.slope * x.get(CHAMPION_LOGIT, 0.0) + self.intercept
        return margin + sum(self.weights[name] * z[name] for name in self.features)

    def predict_proba_one(self, x: dict) -> dict[bool, float]:
        margin = self._margin(x, self._z(x))
        p = 1.0 / (1.0 + math.exp(-min(max(margin, -30.0), 30.0)))
        return {False: 1.0 - p, True: p}

    def learn_one(self, x: dict, y: bool) -> None:
        z = self._z(x)
        margin = self._margin(x, z)
        error = 1.0 / (1.0 + math.exp(-min(max(margin, -30.0), 30.0))) - float(bool(y))
        self.slope -= self.lr * error * x.get(CHAMPION_LOGIT, 0.0)
        self.intercept -= self.intercept_lr * error
        for name in self.features:
            self.weights[name] -= self.lr * (error * z[name] + self.l2 * self.weights[name])
        # The scaler learns after the weights, so a shot is standardised as it was predicted.
        self._n += 1
        for name in self.features:
            value = x.get(name)
            if value is None or value != value:
                continue
            delta = value - self._mean[name]
            self._mean[name] += delta / self._n
            self._m2[name] += delta * (value - self._mean[name])


def learner_input(
    model: Any,
    seen: dict[str, float],
    p_champion: float,
    shot: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What ``model`` is given for a shot: its :func:`learner_features`, the champion's logit
    as well when the model works on top of the champion, and the shooter's player and team ids
    (from ``shot``, the scored record) when it learns per player or team (``uses_ids``).

    Example:
        >>> learner_input(OnTopOfChampion(), {"x": 1.0}, 0.5)
        {'x': 1.0, 'champion_logit': 0.0}
    """
    x: dict[str, Any] = seen
    if getattr(model, "uses_champion", False):
        x = {**x, CHAMPION_LOGIT: _logit(p_champion)}
    if getattr(model, "uses_ids", False):
        shot = shot or {}
        x = {**x, PLAYER_ID: shot.get(PLAYER_ID), TEAM_ID: shot.get(TEAM_ID)}
    return x


LEARNERS: dict[str, Callable[[], Classifier]] = {
    "logreg": scaled_logistic_regression,
    "arf": adaptive_forest,
    "on_champion": OnTopOfChampion,
    "bias": ChampionBias,
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
    # Each run of equal probabilities shares its mean rank: ranks start+1 .. start+count.
    # (Vectorised: a loop over runs cost the worker a core-percent at a 10,000-shot window.)
    _, starts, counts = np.unique(p[order], return_index=True, return_counts=True)
    ranks = np.empty(len(p), dtype=np.float64)
    ranks[order] = np.repeat(starts + (counts + 1) / 2.0, counts)
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
