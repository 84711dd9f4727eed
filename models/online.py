"""River online learners: they learn from every outcome as it arrives.

Every learner follows River's protocol (``predict_proba_one`` before ``learn_one``), so its live
metrics are progressive validation: each shot is predicted before the learner has seen its
outcome, exactly like the champion.
"""

from __future__ import annotations

from collections.abc import Callable

from river import compose, linear_model, metrics, optim, preprocessing
from river.base import Classifier


def scaled_logistic_regression() -> Classifier:
    """Standardised features into a logistic regression; cheap enough for every shot."""
    return compose.Pipeline(
        preprocessing.StandardScaler(),
        linear_model.LogisticRegression(optimizer=optim.SGD(0.02), l2=1e-4),
    )


LEARNERS: dict[str, Callable[[], Classifier]] = {
    "logreg": scaled_logistic_regression,
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
