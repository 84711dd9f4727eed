"""The candidate learners `parivision train` compares, all on the one feature matrix.

Every candidate takes its hyperparameters in the constructor, learns with ``fit(x, y)`` from the
:func:`models.features.build_features` matrix (rows in time order) and returns a
:class:`models.shot_model.ShotModel`; ``importance`` says which features it leans on.  A new
candidate is one class here and one entry in :data:`CANDIDATES`.

The boosters stop early on the most recent tenth of *their training rows*, then refit on all of
them with that many rounds: the validation window that ranks the candidates is never seen by any
of them, so the comparison is fair.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from models.features import CATEGORICAL, FEATURE_NAMES
from models.shot_model import ShotModel

NUMERIC_COLUMNS = [
    i for i, n in enumerate(FEATURE_NAMES) if n not in CATEGORICAL and not n.startswith("action_")
]
CATEGORICAL_COLUMNS = [FEATURE_NAMES.index(n) for n in CATEGORICAL]
FLAG_COLUMNS = [i for i, n in enumerate(FEATURE_NAMES) if n.startswith("action_")]


def _tail_split(n: int, share: float) -> int:
    """Where the most recent ``share`` of ``n`` time-ordered rows starts."""
    return max(1, min(n - 1, int(n * (1.0 - share))))


class Candidate:
    """A learner to compare: hyperparameters in, :class:`ShotModel` out."""

    name: ClassVar[str]
    label: ClassVar[str]

    def __init__(self) -> None:
        # What fitting decided (boosting rounds, rows used), logged beside the hyperparameters.
        self.fit_info: dict[str, Any] = {}

    def params(self) -> dict[str, Any]:
        """The hyperparameters, as logged to MLflow."""
        return {k: v for k, v in vars(self).items() if k != "fit_info"}

    def fit(self, x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> ShotModel:
        """Learn from rows ``x`` (time order) with outcomes ``y``, each row counting ``weight``
        (all 1 when None)."""
        raise NotImplementedError

    def importance(self, model: ShotModel, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, str]:
        """One value per feature and what it means; permutation importance unless overridden.

        ``x``, ``y`` are held-out rows (a few thousand are enough).
        """
        from sklearn.inspection import permutation_importance
        from threadpoolctl import threadpool_limits

        # Many small predictions: OpenMP threads only add barrier waits (badly so on a busy box).
        with threadpool_limits(limits=1, user_api="openmp"):
            result = permutation_importance(
                model.estimator,
                x,
                y,
                scoring="neg_log_loss",
                n_repeats=3,
                random_state=7,
                n_jobs=1,
            )
        return result.importances_mean, "permutation importance (log loss increase)"


class LogisticCandidate(Candidate):
    """Logistic regression: numbers imputed and scaled, zone codes one-hot, action flags as-is."""

    name = "logreg"
    label = "logistic regression"

    def __init__(self, c: float = 1.0, max_iter: int = 1000) -> None:
        super().__init__()
        self.c = c
        self.max_iter = max_iter

    def fit(self, x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> ShotModel:
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline, make_pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        prepare = ColumnTransformer(
            [
                (
                    "numeric",
                    make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                    NUMERIC_COLUMNS,
                ),
                # An unknown zone (NaN) is its own level rather than a guess at a real one.
                (
                    "zones",
                    make_pipeline(
                        SimpleImputer(strategy="constant", fill_value=-1.0),
                        OneHotEncoder(handle_unknown="ignore"),
                    ),
                    CATEGORICAL_COLUMNS,
                ),
                ("flags", "passthrough", FLAG_COLUMNS),
            ]
        )
        pipeline = Pipeline(
            [("prepare", prepare), ("model", LogisticRegression(C=self.c, max_iter=self.max_iter))]
        )
        pipeline.fit(x, y, model__sample_weight=weight)
        self.fit_info = {"rows_fitted": len(x)}
        return ShotModel(self.name, pipeline)

    def importance(self, model: ShotModel, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, str]:
        """|coef|: per standard deviation for numbers, per flag for actions; for a zone, the
        spread of its levels' coefficients (the largest log-odds gap between two zones)."""
        prepare = model.estimator.named_steps["prepare"]
        coef = model.estimator.named_steps["model"].coef_[0]
        values = np.zeros(len(FEATURE_NAMES))
        offset = 0
        for name, _, columns in prepare.transformers_:
            if name == "remainder":
                continue
            if name == "zones":
                encoder = prepare.named_transformers_["zones"][-1]
                for column, levels in zip(columns, encoder.categories_, strict=True):
                    block = coef[offset : offset + len(levels)]
                    values[column] = float(block.max() - block.min())
                    offset += len(levels)
            else:
                for column in columns:
                    values[column] = abs(float(coef[offset]))
                    offset += 1
        return values, "|coefficient| (numbers per SD; zones: spread over levels)"


class ForestCandidate(Candidate):
    """Random forest on the most recent ``max_rows`` training rows (it is the slow one)."""

    name = "random_forest"
    label = "random forest"

    def __init__(
        self,
        n_estimators: int = 100,
        max_depth: int = 12,
        min_samples_leaf: int = 20,
        max_features: str = "sqrt",
        max_rows: int = 100_000,
        n_jobs: int = 2,
        random_state: int = 7,
    ) -> None:
        super().__init__()
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.max_rows = max_rows
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> ShotModel:
        from sklearn.ensemble import RandomForestClassifier

        # The most recent rows, not a random sample: the nearer past is more like what comes next.
        x, y = x[-self.max_rows :], y[-self.max_rows :]
        weight = None if weight is None else weight[-self.max_rows :]
        forest = RandomForestClassifier(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
        )
        forest.fit(x, y, sample_weight=weight)
        self.fit_info = {"rows_fitted": len(x)}
        return ShotModel(self.name, forest)

    def importance(self, model: ShotModel, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, str]:
        return model.estimator.feature_importances_, "mean impurity decrease"


class HistGradientBoostingCandidate(Candidate):
    """scikit-learn's histogram gradient boosting, zone codes as native categories."""

    name = "hist_gb"
    label = "HistGradientBoosting"

    def __init__(
        self,
        learning_rate: float = 0.05,
        max_iter: int = 500,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 100,
        l2_regularization: float = 1.0,
        n_iter_no_change: int = 30,
        stop_share: float = 0.1,
        random_state: int = 7,
    ) -> None:
        super().__init__()
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.n_iter_no_change = n_iter_no_change
        self.stop_share = stop_share
        self.random_state = random_state

    def _model(self, max_iter: int, early_stopping: bool):
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(
            learning_rate=self.learning_rate,
            max_iter=max_iter,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            categorical_features=CATEGORICAL_COLUMNS,
            early_stopping=early_stopping,
            n_iter_no_change=self.n_iter_no_change,
            random_state=self.random_state,
        )

    def fit(self, x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> ShotModel:
        cut = _tail_split(len(x), self.stop_share)
        probe = self._model(self.max_iter, early_stopping=True)
        early, late = (None, None) if weight is None else (weight[:cut], weight[cut:])
        probe.fit(x[:cut], y[:cut], early, X_val=x[cut:], y_val=y[cut:], sample_weight_val=late)
        # n_iter_ counts the rounds after the best too; the best is n_iter_no_change earlier.
        rounds = max(
            1, probe.n_iter_ - (self.n_iter_no_change if probe.n_iter_ < self.max_iter else 0)
        )
        model = self._model(rounds, early_stopping=False).fit(x, y, sample_weight=weight)
        self.fit_info = {"rounds": rounds, "rows_fitted": len(x)}
        return ShotModel(self.name, model)


class LightGBMCandidate(Candidate):
    """LightGBM, zone codes as native categories.

    One thread by default: LightGBM runs many tiny OpenMP regions per round, and when another
    process holds a core their barriers stall (measured here: 0.25 s a round with two threads on a
    busy two-core box, against 0.015 s with one).  On ~200k rows one thread takes a few seconds.
    """

    name = "lightgbm"
    label = "LightGBM"

    def __init__(
        self,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_data_in_leaf: int = 100,
        feature_fraction: float = 0.9,
        bagging_fraction: float = 0.8,
        lambda_l2: float = 1.0,
        max_rounds: int = 600,
        stopping_rounds: int = 40,
        stop_share: float = 0.1,
        num_threads: int = 1,
        seed: int = 7,
    ) -> None:
        super().__init__()
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_data_in_leaf = min_data_in_leaf
        self.feature_fraction = feature_fraction
        self.bagging_fraction = bagging_fraction
        self.lambda_l2 = lambda_l2
        self.max_rounds = max_rounds
        self.stopping_rounds = stopping_rounds
        self.stop_share = stop_share
        self.num_threads = num_threads
        self.seed = seed

    def _booster_params(self) -> dict[str, Any]:
        return {
            "objective": "binary",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1,
            "lambda_l2": self.lambda_l2,
            "verbosity": -1,
            "num_threads": self.num_threads,
            "seed": self.seed,
        }

    def _dataset(self, x: np.ndarray, y: np.ndarray, weight: np.ndarray | None):
        import lightgbm as lgb

        return lgb.Dataset(
            x,
            y,
            weight=weight,
            feature_name=list(FEATURE_NAMES),
            categorical_feature=list(CATEGORICAL),
            free_raw_data=False,
        )

    def fit(self, x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> ShotModel:
        import lightgbm as lgb

        cut = _tail_split(len(x), self.stop_share)
        early, late = (None, None) if weight is None else (weight[:cut], weight[cut:])
        fit_set = self._dataset(x[:cut], y[:cut], early)
        probe = lgb.train(
            self._booster_params(),
            fit_set,
            num_boost_round=self.max_rounds,
            valid_sets=[fit_set.create_valid(x[cut:], y[cut:], weight=late)],
            callbacks=[lgb.early_stopping(self.stopping_rounds, verbose=False)],
        )
        rounds = max(1, probe.best_iteration or self.max_rounds)
        booster = lgb.train(
            self._booster_params(), self._dataset(x, y, weight), num_boost_round=rounds
        )
        self.fit_info = {"rounds": rounds, "rows_fitted": len(x)}
        return ShotModel(self.name, booster)

    def importance(self, model: ShotModel, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, str]:
        return model.estimator.feature_importance(importance_type="gain"), "total gain"


CANDIDATES: dict[str, type[Candidate]] = {
    c.name: c
    for c in (LogisticCandidate, ForestCandidate, HistGradientBoostingCandidate, LightGBMCandidate)
}


def make_candidates(names: Sequence[str] | None = None) -> list[Candidate]:
    """Fresh candidates with their default hyperparameters (all of them when ``names`` is None)."""
    names = list(names) if names else list(CANDIDATES)
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        raise ValueError(
            f"unknown candidate {', '.join(unknown)}: choose from {', '.join(CANDIDATES)}"
        )
    return [CANDIDATES[n]() for n in dict.fromkeys(names)]
