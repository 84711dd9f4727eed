"""Recalibration: kept only when it helps on validation shots it was not fitted on."""

import doctest

import numpy as np
import pytest

from models import calibration
from models.calibration import apply_platt, fit_platt, recalibrate
from models.metrics import score
from models.shot_model import ShotModel


def test_docstring_examples():
    result = doctest.testmod(calibration)
    assert result.attempted > 0 and result.failed == 0


def _shots(n, seed):
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0.25, 0.75, n)
    return truth, (rng.random(n) < truth).astype(np.int64)


def test_a_model_five_points_too_high_is_recalibrated_to_the_make_rate():
    truth, made = _shots(20_000, 1)
    too_high = np.clip(truth + 0.05, 0.01, 0.99)  # ranks perfectly, levels wrong
    found = recalibrate(too_high, made)
    assert found.calibration is not None
    assert found.after["log_loss"] < found.before["log_loss"]
    assert found.after["ece"] < found.before["ece"] / 2
    fixed = apply_platt(too_high, found.calibration)
    assert abs(fixed.mean() - made.mean()) < 0.005 < abs(too_high.mean() - made.mean())
    # Platt scaling is monotone: the order of the shots, hence ROC-AUC, does not change.
    assert score(made, fixed)["roc_auc"] == pytest.approx(score(made, too_high)["roc_auc"])


def test_a_calibrated_model_is_left_alone():
    truth, made = _shots(20_000, 2)
    found = recalibrate(truth, made)
    assert found.calibration is None
    assert "did not lower" in found.reason


def test_too_few_shots_or_one_outcome_are_not_recalibrated():
    truth, made = _shots(600, 3)
    assert "too few" in recalibrate(truth, made).reason
    assert "one outcome" in recalibrate(np.full(2000, 0.5), np.zeros(2000, dtype=int)).reason
    with pytest.raises(ValueError, match="both made and missed"):
        fit_platt(np.full(10, 0.5), np.ones(10))


class _Fixed:
    def predict_proba(self, x):
        return np.column_stack([1 - x[:, 0], x[:, 0]])


def test_the_shot_model_applies_its_calibration_and_keeps_the_raw_probability():
    x = np.array([[0.3], [0.5], [0.7]])
    plain = ShotModel("fixed", _Fixed(), ("p",))
    np.testing.assert_allclose(plain.predict(x), [0.3, 0.5, 0.7])
    shifted = ShotModel("fixed", _Fixed(), ("p",), calibration=(1.0, -0.2))
    assert np.all(shifted.predict(x) < plain.predict(x))
    np.testing.assert_allclose(shifted.predict_raw(x), plain.predict(x))
    assert "calibrated" in repr(shifted)
    # A model pickled before calibration existed has no such attribute and predicts as before.
    del plain.calibration
    np.testing.assert_allclose(plain.predict(x), [0.3, 0.5, 0.7])
