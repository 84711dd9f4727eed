"""Calibration error: what a user reads as "the probabilities are off by this much"."""

import numpy as np
import pytest

from models.metrics import METRIC_NAMES, calibration_error, score


@pytest.fixture(scope="module")
def outcomes_of_known_probabilities():
    """200,000 shots whose true make probabilities are known, and their drawn outcomes."""
    rng = np.random.default_rng(10)
    p = rng.uniform(0.2, 0.8, 200_000)
    return p, (rng.uniform(size=len(p)) < p).astype(np.int64)


def test_true_probabilities_have_almost_no_calibration_error(outcomes_of_known_probabilities):
    p, y = outcomes_of_known_probabilities
    # Sampling noise only: each of the 10 bins holds 20,000 shots (standard error ~0.0035).
    assert calibration_error(y, p) < 0.01


@pytest.mark.parametrize("offset", [0.05, -0.1])
def test_a_constant_offset_is_the_calibration_error(outcomes_of_known_probabilities, offset):
    p, y = outcomes_of_known_probabilities
    assert calibration_error(y, p + offset) == pytest.approx(abs(offset), abs=0.01)


def test_bins_hold_equal_counts_not_equal_widths():
    p, y = np.array([0.1, 0.2, 0.3, 0.9]), np.array([0, 0, 1, 1])
    # By hand, two shots a bin: (0.1, 0.2) none made, |0 - 0.3| = 0.3; (0.3, 0.9) both made,
    # |2 - 1.2| = 0.8; over 4 shots 0.275.  Bins of equal width (below and above 0.5) would give
    # (|1 - 0.6| + |1 - 0.9|) / 4 = 0.125.
    assert calibration_error(y, p, bins=2) == pytest.approx(1.1 / 4)


def test_shots_with_the_same_probability_share_a_bin_whatever_their_order():
    # By hand: the three 0.1s are one bin, 1 made of 3, |1 - 0.3| = 0.7; 0.9 made, 0.1; /4.
    # Cutting the sorted shots in halves put one 0.1 with the 0.9, and which one (made or
    # missed) depended on the order the shots came in: 0.3 in one order, 0.2 in another.
    p = np.array([0.1, 0.1, 0.1, 0.9])
    for y in ([0, 0, 1, 1], [1, 0, 0, 1], [0, 1, 0, 1]):
        assert calibration_error(np.array(y), p, bins=2) == pytest.approx(0.8 / 4)


def test_it_is_scikit_learn_s_quantile_calibration_curve_weighted_by_bin():
    from sklearn.calibration import calibration_curve

    rng = np.random.default_rng(7)
    p = np.round(rng.uniform(0.05, 0.95, 5000), 2)  # many ties, as a coarse model gives
    y = (rng.uniform(size=5000) < np.clip(p + 0.05, 0, 1)).astype(int)
    made, predicted = calibration_curve(y, p, n_bins=10, strategy="quantile")
    # scikit-learn's own binning rule, for each bin's share of the shots (it drops empty bins).
    edges = np.percentile(p, np.linspace(0, 100, 11))
    counts = np.bincount(np.searchsorted(edges[1:-1], p), minlength=10)
    truth = float((counts[counts > 0] * np.abs(made - predicted)).sum() / len(y))
    assert calibration_error(y, p) == pytest.approx(truth, abs=1e-12)
    shuffled = rng.permutation(len(y))
    assert calibration_error(y[shuffled], p[shuffled]) == pytest.approx(truth, abs=1e-12)


def test_more_bins_than_shots_and_no_shots():
    assert calibration_error(np.array([1, 0]), np.array([0.75, 0.25]), bins=10) == 0.25
    assert np.isnan(calibration_error(np.array([]), np.array([])))
    with pytest.raises(ValueError, match="at least one bin"):
        calibration_error(np.array([1]), np.array([0.5]), bins=0)


def test_score_reports_it_under_every_metric_name():
    y, p = np.array([0, 1, 1, 0, 1]), np.array([0.2, 0.7, 0.6, 0.4, 0.9])
    metrics = score(y, p)
    assert set(METRIC_NAMES) <= set(metrics)
    assert metrics["ece"] == pytest.approx(calibration_error(y, p))
