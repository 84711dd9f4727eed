import numpy as np
import pytest

from models import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def outcomes():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.95, 2000)
    return (rng.uniform(size=p.size) < p).astype(int), p


def _is_png(path):
    data = path.read_bytes()
    return len(data) > 1000 and data.startswith(PNG_MAGIC)


def test_each_picture_is_a_non_empty_png(outcomes, tmp_path):
    y, p = outcomes
    written = [
        plots.plot_calibration(y, p, tmp_path / "calibration.png"),
        plots.plot_confusion(y, p, tmp_path / "sub" / "confusion.png"),
        plots.plot_importance(["a", "b", "c"], np.array([0.2, 3.0, 1.0]), tmp_path / "imp.png"),
    ]
    assert all(_is_png(path) for path in written)


def test_calibration_bins_count_every_shot_and_match_the_observed_rates():
    y = np.array([0, 0, 1, 1, 1, 0])
    p = np.array([0.05, 0.08, 0.91, 0.95, 0.55, 0.52])
    predicted, observed, counts = plots.calibration_bins(y, p, bins=10)
    assert counts.tolist() == [2, 2, 2]  # empty bins are left out
    np.testing.assert_allclose(observed, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(predicted, [0.065, 0.535, 0.93])


def test_a_perfectly_calibrated_model_lies_on_the_diagonal(outcomes):
    y, p = outcomes
    predicted, observed, counts = plots.calibration_bins(y, p)
    assert counts.sum() == len(y)
    assert np.abs(predicted - observed).max() < 0.08


def test_confusion_counts_rows_are_actual_columns_are_called():
    y = np.array([0, 0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.2, 0.7, 0.4])
    assert plots.confusion_counts(y, p).tolist() == [[2, 1], [1, 1]]
    assert plots.confusion_counts(y, p, threshold=0.05).tolist() == [[0, 3], [0, 2]]


def test_importance_needs_one_value_per_feature(tmp_path):
    with pytest.raises(ValueError, match="2 feature names for 3"):
        plots.plot_importance(["a", "b"], np.ones(3), tmp_path / "x.png")
