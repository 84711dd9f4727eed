"""The numbers a shot model is judged by, the same in training, evaluation and benchmarks.

Log loss is the primary one: the stream sells fair odds (1/p), so what matters is whether the
probabilities are right, not only whether the ranking is (ROC-AUC) or the 0.5 call is (accuracy).
Expected calibration error (ECE) says the same thing in one readable number: how far, on average,
the make rate of shots given a probability is from that probability.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, brier_score_loss, f1_score, log_loss, roc_auc_score

# A probability of exactly 0 or 1 makes log loss infinite for one wrong shot.
EPSILON = 1e-6

METRIC_NAMES = ("log_loss", "roc_auc", "brier", "ece", "accuracy", "f1")


def calibration_error(y_true: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over ``bins`` equal-count (quantile) bins of P(made).

    The bin edges are the quantiles of the probabilities, as scikit-learn's
    ``calibration_curve(strategy="quantile")`` draws them; each bin contributes
    ``|make rate - mean probability|`` weighted by its share of the shots.  Equal-count bins, not
    equal-width ones: most shot probabilities sit between 0.3 and 0.7, and fixed-width bins would
    leave the tails nearly empty and noisy.  Shots with the same probability always share a bin,
    so the error does not depend on the order the shots come in (cutting a sorted list into
    equal parts did, when a model gives many shots one value).  NaN when there are no shots.

    Example:
        >>> y = np.array([0, 0, 1, 1])
        >>> round(calibration_error(y, np.array([0.1, 0.3, 0.6, 0.9]), bins=2), 4)
        0.225
        >>> calibration_error(y, np.array([0.0, 0.0, 1.0, 1.0]), bins=2)
        0.0
        >>> calibration_error(y, np.array([0.5, 0.5, 0.5, 0.5]), bins=2)  # one bin, not two
        0.0
    """
    if bins < 1:
        raise ValueError(f"calibration error needs at least one bin, not {bins}")
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    if len(y) == 0:
        return float("nan")
    edges = np.percentile(p, np.linspace(0, 100, bins + 1))
    ids = np.searchsorted(edges[1:-1], p)
    made = np.bincount(ids, weights=y, minlength=bins)
    predicted = np.bincount(ids, weights=p, minlength=bins)
    return float(np.abs(made - predicted).sum() / len(y))


def score(y_true: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Log loss, ROC-AUC, Brier score, expected calibration error (10 equal-count bins),
    accuracy and F1 (both at 0.5) of P(made) against outcomes.

    ROC-AUC is NaN when only one class is present.

    Example:
        >>> m = score(np.array([0, 1, 1, 0]), np.array([0.2, 0.7, 0.6, 0.4]))
        >>> round(m["log_loss"], 4), m["roc_auc"], m["accuracy"], round(m["ece"], 4)
        (0.4004, 1.0, 1.0, 0.325)
    """
    y = np.asarray(y_true, dtype=np.int64)
    p = np.clip(np.asarray(p, dtype=np.float64), EPSILON, 1.0 - EPSILON)
    called = p >= 0.5
    return {
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "roc_auc": float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan"),
        "brier": float(brier_score_loss(y, p, pos_label=1)),
        "ece": calibration_error(y, p),
        "accuracy": float(accuracy_score(y, called)),
        "f1": float(f1_score(y, called, zero_division=0.0)),
    }


def base_rate_log_loss(y_train: np.ndarray, y_valid: np.ndarray) -> float:
    """Log loss of always predicting the training make rate: the bar every model must clear."""
    rate = float(np.mean(y_train))
    return score(y_valid, np.full(len(y_valid), rate))["log_loss"]
