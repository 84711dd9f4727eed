"""Evidently's drift and quality numbers, computed directly: the same tests, on the same values,
as Evidently 0.7's ``DataDriftPreset`` and ``ClassificationPreset`` with their defaults, at a
small fraction of their cost (``bench/drift_check.py``; the tests run Evidently for the truth).

Each column is tested on its finite values (``get_one_column_drift`` in
``evidently/legacy/calculations/data_drift.py`` drops NaN and infinities on each side), with
the test Evidently picks by default (``_get_default_stattest`` in
``evidently/legacy/calculations/stattests/registry.py``) from the reference's rows, the
column's type and its distinct values on both sides together:

- more than 1,000 reference rows, a number with more than 5 values: the Wasserstein distance
  normed by the reference's standard deviation (``stattests/wasserstein_distance_norm.py``:
  ``scipy.stats.wasserstein_distance / max(std, 0.001)``), drifted at 0.1 or more;
- more than 1,000 reference rows, a category or a number with 5 values or fewer: the
  Jensen-Shannon distance (``stattests/jensenshannon.py``, natural log) between the shares of
  each value on each side (``get_binned_data`` in ``stattests/utils.py``, without its filling
  of zeros; a number with more than 20 reference values would be binned on Sturges' edges of
  both sides together, which the default never asks for), drifted at 0.1 or more;
- 1,000 reference rows or fewer, a number with more than 5 values: the two-sided
  Kolmogorov-Smirnov test (``stattests/ks_stattest.py``), drifted at p <= 0.05;
- 1,000 or fewer, a category with more than 2 values or a number with 3 to 5: chi-square of
  the recent counts against the reference's scaled to the recent rows
  (``stattests/chisquare_stattest.py``), drifted at p < 0.05;
- 1,000 or fewer, 2 values or fewer: the two-sided Z-test of the share of the smallest value
  (``stattests/z_stattest.py``; p = 1 when both sides hold one and the same value), drifted
  at p < 0.05.

The dataset drifts when the share of drifted columns reaches ``drift_share``
(``get_dataset_drift`` in ``evidently/legacy/calculations/data_drift.py``).

The quality is ``calculate_metrics`` in
``evidently/legacy/calculations/classification_performance.py`` for an integer target and a
float probability of the positive label 1 (``get_prediction_data``): labels ``p >= 0.5``;
accuracy, precision, recall and F1 of label 1 (0 where undefined); ROC-AUC macro-averaged and
log loss over the one-hot outcome ``[made, missed]`` against ``[p, 1 - p]``, all scikit-learn's.

Example: samples half a standard deviation apart are about 0.5 apart in the normed
Wasserstein distance (drifted), and two halves of one sample, tested by KS on 500 reference
rows, are not:

    >>> rng = np.random.default_rng(0)
    >>> before, after = rng.normal(0, 1, 2000), rng.normal(0.5, 1, 2000)
    >>> score = column_drift(before, after, categorical=False)
    >>> score.method, score.drifted, round(score.score, 2)
    ('Wasserstein distance (normed)', True, 0.53)
    >>> column_drift(before[:500], before[500:1000], categorical=False).drifted
    False
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special, stats
from scipy.spatial import distance

# Evidently's choice of test turns on these (``_get_default_stattest``, ``get_binned_data``).
LARGE_REFERENCE = 1000
FEW_VALUES = 5
HISTOGRAM_VALUES = 20

WASSERSTEIN = "Wasserstein distance (normed)"
JENSEN_SHANNON = "Jensen-Shannon distance"
KS = "K-S p_value"
CHI_SQUARE = "chi-square p_value"
Z_TEST = "Z-test p_value"
DISTANCE_THRESHOLD, P_THRESHOLD = 0.1, 0.05


@dataclass(frozen=True)
class FeatureScore:
    """One feature's drift test as Evidently runs it."""

    method: str
    score: float
    threshold: float
    drifted: bool


def column_drift(reference: np.ndarray, current: np.ndarray, *, categorical: bool) -> FeatureScore:
    """One column's drift, by the test Evidently picks for it.

    Raises:
        ValueError: a side has no finite value (Evidently refuses an empty column).
    """
    reference = _finite(reference, "reference")
    current = _finite(current, "recent")
    values = np.unique(np.concatenate([reference, current]))
    if len(reference) > LARGE_REFERENCE:
        if categorical or len(values) <= FEW_VALUES:
            return _jensen_shannon(reference, current, values, numerical=not categorical)
        return _wasserstein(reference, current)
    if len(values) <= 2:
        return _z_test(reference, current, values)
    if categorical or len(values) <= FEW_VALUES:
        return _chi_square(reference, current, values)
    p = float(stats.ks_2samp(reference, current)[1])
    return FeatureScore(KS, p, P_THRESHOLD, p <= P_THRESHOLD)


def _finite(values: np.ndarray, side: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if not len(values):
        raise ValueError(f"a column has no finite value in the {side} shots")
    return values


def _wasserstein(reference: np.ndarray, current: np.ndarray) -> FeatureScore:
    norm = max(float(np.std(reference)), 0.001)
    score = float(stats.wasserstein_distance(reference, current)) / norm
    return FeatureScore(WASSERSTEIN, score, DISTANCE_THRESHOLD, score >= DISTANCE_THRESHOLD)


def _counts(sample: np.ndarray, values: np.ndarray) -> np.ndarray:
    """How often each of ``values`` (sorted, holding every value of ``sample``) occurs."""
    return np.bincount(np.searchsorted(values, sample), minlength=len(values))


def binned_shares(
    reference: np.ndarray, current: np.ndarray, values: np.ndarray, *, numerical: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Each side's shares per value, or per Sturges bin for a number with many values: what
    Evidently's ``get_binned_data`` gives Jensen-Shannon (``values``: both sides' values)."""
    if numerical and len(np.unique(reference)) > HISTOGRAM_VALUES:
        bins = np.histogram_bin_edges(np.concatenate([reference, current]), bins="sturges")
        return (
            np.histogram(reference, bins)[0] / len(reference),
            np.histogram(current, bins)[0] / len(current),
        )
    return _counts(reference, values) / len(reference), _counts(current, values) / len(current)


def _jensen_shannon(
    reference: np.ndarray, current: np.ndarray, values: np.ndarray, *, numerical: bool
) -> FeatureScore:
    shares = binned_shares(reference, current, values, numerical=numerical)
    score = float(distance.jensenshannon(*shares))
    return FeatureScore(JENSEN_SHANNON, score, DISTANCE_THRESHOLD, score >= DISTANCE_THRESHOLD)


def _chi_square(reference: np.ndarray, current: np.ndarray, values: np.ndarray) -> FeatureScore:
    expected = _counts(reference, values) * (len(current) / len(reference))
    with np.errstate(divide="ignore", invalid="ignore"):
        # A value the reference never had is expected 0 times: an infinite statistic, p = 0.
        p = float(stats.chisquare(_counts(current, values), expected)[1])
    return FeatureScore(CHI_SQUARE, p, P_THRESHOLD, p < P_THRESHOLD)


def _z_test(reference: np.ndarray, current: np.ndarray, values: np.ndarray) -> FeatureScore:
    if len(values) == 1:
        p = 1.0
    else:
        n1, n2 = len(reference), len(current)
        p1 = float(np.count_nonzero(reference != values[0])) / n1
        p2 = float(np.count_nonzero(current != values[0])) / n2
        pooled = float(p1 * n1 + p2 * n2) / (n1 + n2)
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
        p = float(2 * (1 - special.ndtr(np.abs(z))))
    return FeatureScore(Z_TEST, p, P_THRESHOLD, p < P_THRESHOLD)


def columns_to_test(
    recent: pd.DataFrame, reference: pd.DataFrame, names: Sequence[str]
) -> list[str]:
    """The columns of ``names`` with a finite value on both sides: Evidently refuses the others
    (a feature the store never had)."""

    def some(frame: pd.DataFrame, name: str) -> bool:
        return bool(np.isfinite(frame[name].to_numpy(np.float64)).any())

    return [name for name in names if some(recent, name) and some(reference, name)]


def dataset_drift(
    recent: pd.DataFrame,
    reference: pd.DataFrame,
    columns: Sequence[str],
    categorical: Collection[str],
) -> tuple[float, dict[str, FeatureScore]]:
    """The share of ``columns`` that drifted, and each column's test, recent against reference."""
    scores = {
        name: column_drift(
            reference[name].to_numpy(np.float64),
            recent[name].to_numpy(np.float64),
            categorical=name in categorical,
        )
        for name in columns
    }
    drifted = sum(score.drifted for score in scores.values())
    return (drifted / len(scores) if scores else 0.0), scores


def quality(outcome: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Accuracy, precision, recall, F1, ROC-AUC and log loss of probabilities ``p`` of the
    outcomes 1 and 0, keyed as :data:`models.drift_evidently.QUALITY` names them."""
    from sklearn import metrics
    from sklearn.exceptions import UndefinedMetricWarning

    y = np.asarray(outcome).astype(np.int64)
    p = np.asarray(p, dtype=np.float64)
    labels = (p >= 0.5).astype(np.int64)
    one_hot = np.column_stack([y == 1, y == 0]).astype(np.int64)
    probas = np.column_stack([p, 1.0 - p])
    with warnings.catch_warnings():
        # A champion that never says "made" above 0.5 has no precision; Evidently reports 0.
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        # What precision_score, recall_score and f1_score each compute, in one pass.
        precision, recall, f1, _ = metrics.precision_recall_fscore_support(
            y, labels, pos_label=1, average="binary"
        )
    return {
        "accuracy": float(metrics.accuracy_score(y, labels)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "roc_auc": float(metrics.roc_auc_score(one_hot, probas, average="macro")),
        "log_loss": float(metrics.log_loss(one_hot, probas)),
    }
