"""The one shape every registered model has, whatever learned it.

The stream calls ``predict(matrix)`` for P(made) and ``feature_name()`` to check the feature set,
as it did on a raw LightGBM booster.  :class:`ShotModel` gives scikit-learn estimators and
boosters that same face, and :class:`ShotPyfunc` is how it is stored in MLflow (a pyfunc whose
``predict`` returns P(made) for a feature matrix), so ``mlflow models serve`` works on it too.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import numpy as np

from models.calibration import apply_platt
from models.features import FEATURE_NAMES, FEATURE_SET

# Below this many rows a Booster predicts on one thread (measured: p50 0.16 ms against 2.2 ms
# for one row with the default pool on the two-core machine; 10,000 rows gain from the pool).
SMALL_BATCH = 1000


class ShotModel:
    """A fitted estimator over the :data:`FEATURE_NAMES` matrix, answering P(made).

    Args:
        candidate: which candidate learned it (``"lightgbm"``, ``"logreg"``, ...).
        estimator: a LightGBM ``Booster`` or anything with scikit-learn's ``predict_proba``.
        feature_names: the columns it was fitted on, in order.
        feature_set: the :data:`models.features.FEATURE_SET` tag of those columns.
        calibration: Platt (slope, intercept) on the logit applied to the estimator's
            probabilities (see :mod:`models.calibration`), or None.
    """

    def __init__(
        self,
        candidate: str,
        estimator: Any,
        feature_names: tuple[str, ...] = FEATURE_NAMES,
        feature_set: str = FEATURE_SET,
        calibration: tuple[float, float] | None = None,
    ) -> None:
        self.candidate = candidate
        self.estimator = estimator
        self.feature_names = tuple(feature_names)
        self.feature_set = feature_set
        self.calibration = calibration

    def predict(self, features: np.ndarray) -> np.ndarray:
        """P(made) for each row of the feature matrix."""
        p = self.predict_raw(features)
        # Models pickled before calibration existed have no such attribute.
        calibration = getattr(self, "calibration", None)
        return p if calibration is None else apply_platt(p, calibration)

    def predict_raw(self, features: np.ndarray) -> np.ndarray:
        """The estimator's own P(made), before any calibration."""
        features = np.asarray(features, dtype=np.float64)
        if hasattr(self.estimator, "predict_proba"):
            return np.asarray(self.estimator.predict_proba(features)[:, 1], dtype=np.float64)
        # A LightGBM Booster with the binary objective predicts the probability itself.  A few
        # rows (one API request, a small micro-batch) go faster on one thread than through the
        # thread pool, whose start-up dominates them on a busy machine.
        threads = {"num_threads": 1} if len(features) < SMALL_BATCH else {}
        return np.asarray(self.estimator.predict(features, **threads), dtype=np.float64)

    def feature_name(self) -> list[str]:
        """The feature columns, as LightGBM's ``Booster.feature_name()`` returns them."""
        return list(self.feature_names)

    def __repr__(self) -> str:
        calibrated = ", calibrated" if getattr(self, "calibration", None) else ""
        return f"ShotModel({self.candidate!r}, feature_set={self.feature_set!r}{calibrated})"


class ShotPyfunc(mlflow.pyfunc.PythonModel):
    """The MLflow pyfunc around a :class:`ShotModel`: input a feature matrix, output P(made)."""

    def __init__(self, shot_model: ShotModel) -> None:
        self.shot_model = shot_model

    def predict(self, context, model_input: np.ndarray, params=None) -> np.ndarray:
        return self.shot_model.predict(np.asarray(model_input, dtype=np.float64))


def pip_requirements() -> list[str]:
    """Pinned to what trained the model, so MLflow need not infer them (slow, a subprocess)."""
    import lightgbm
    import sklearn

    return [
        f"numpy=={np.__version__}",
        f"scikit-learn=={sklearn.__version__}",
        f"lightgbm=={lightgbm.__version__}",
        f"mlflow=={mlflow.__version__}",
    ]


def log_shot_model(
    model: ShotModel, example: np.ndarray, *, registered_model_name: str | None = None
):
    """Log ``model`` as a pyfunc named ``model`` in the active run (and register it if asked).

    Returns MLflow's ``ModelInfo`` (``registered_model_version`` when registered).
    """
    import logging
    import warnings

    from mlflow.models import infer_signature

    example = np.asarray(example[:5], dtype=np.float64)
    # MLflow warns that a pickled python_model runs code when loaded, and that no input example
    # was given: the pickle holds only our ShotModel, and the signature already fixes the input.
    pyfunc_logger = logging.getLogger("mlflow.pyfunc")
    level = pyfunc_logger.level
    pyfunc_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*input example.*")
            return mlflow.pyfunc.log_model(
                name="model",
                python_model=ShotPyfunc(model),
                signature=infer_signature(example, model.predict(example)),
                pip_requirements=pip_requirements(),
                registered_model_name=registered_model_name,
            )
    finally:
        pyfunc_logger.setLevel(level)


def load_shot_model(uri: str) -> ShotModel:
    """The :class:`ShotModel` inside a pyfunc logged by :func:`log_shot_model`."""
    wrapper = mlflow.pyfunc.load_model(uri).unwrap_python_model()
    if not isinstance(wrapper, ShotPyfunc):
        raise TypeError(f"{uri} is a {type(wrapper).__name__}, not a PariVision shot model")
    return wrapper.shot_model
