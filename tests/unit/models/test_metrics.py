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
    p, y = np.array([0.1, 0.1, 0.1, 0.9]), np.array([0, 0, 1, 1])
    # Two shots a bin: (0.1, 0.1) both missed, gap 0.1; (0.1, 0.9) both made, gap 0.5.  Bins of
    # equal width (below and above 0.5) would give 0.75 * |1/3 - 0.1| + 0.25 * |1 - 0.9| = 0.2.
    assert calibration_error(y, p, bins=2) == pytest.approx(0.5 * 0.1 + 0.5 * 0.5)


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
