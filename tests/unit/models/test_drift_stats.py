"""The drift check's own numbers are Evidently's: on real shots, each feature's test, score and
verdict, the share of drifted features and the champion's quality equal what Evidently's
presets compute (run here, as the truth), against a reference of more than 1,000 rows
(distances) and of 1,000 or fewer (p-values)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.drift_evidently import drift_numbers, drift_snapshot, quality_numbers, quality_snapshot
from models.drift_report import DRIFT_SHARE, shifted_shots
from models.drift_stats import (
    CHI_SQUARE,
    JENSEN_SHANNON,
    KS,
    WASSERSTEIN,
    Z_TEST,
    binned_shares,
    column_drift,
    columns_to_test,
    dataset_drift,
    quality,
)
from models.features import CATEGORICAL, FEATURE_NAMES, build_features

# Real shots of March 2019: the reference, and a window after it.
REFERENCE, RECENT = (205_000, 207_000), (207_000, 209_000)


def _features(shots: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(build_features(shots), columns=list(FEATURE_NAMES))


@pytest.fixture(scope="module")
def windows(shots_frame) -> dict[str, pd.DataFrame]:
    recent = shots_frame.iloc[slice(*RECENT)]
    return {
        "reference": _features(shots_frame.iloc[slice(*REFERENCE)]),
        "real": _features(recent),
        "shifted": _features(shifted_shots(recent)),
    }


def _same(ours: float, evidently: float) -> bool:
    # The same computation in the same order: equal but for the summing order of a few sums.
    return ours == pytest.approx(evidently, rel=1e-9, abs=0.0)


@pytest.mark.parametrize("recent", ["real", "shifted"])
@pytest.mark.parametrize("reference_rows", [2000, 800], ids=["distances", "p-values"])
def test_every_feature_s_test_is_evidently_s(windows, recent, reference_rows):
    current, reference = windows[recent], windows["reference"].iloc[:reference_rows]
    columns = columns_to_test(current, reference, FEATURE_NAMES)
    truth_share, truth = drift_numbers(drift_snapshot(current, reference, columns, DRIFT_SHARE))
    share, scores = dataset_drift(current, reference, columns, CATEGORICAL)
    assert list(scores) == list(truth) == list(FEATURE_NAMES)
    for name, expected in truth.items():
        got = scores[name]
        assert (got.method, got.threshold, got.drifted) == (
            expected.method,
            expected.threshold,
            expected.drifted,
        ), name
        assert _same(got.score, expected.score), (name, got.score, expected.score)
    assert share == truth_share
    methods = {score.method for score in scores.values()}
    if reference_rows > 1000:
        assert methods == {WASSERSTEIN, JENSEN_SHANNON}
    else:
        assert methods == {KS, CHI_SQUARE, Z_TEST}
    if recent == "shifted":
        assert share >= DRIFT_SHARE and scores["distance_m"].drifted


def test_jensen_shannon_bins_as_evidently_does(windows):
    from evidently.legacy.calculations.stattests.utils import get_binned_data
    from evidently.legacy.core import ColumnType

    reference, current = windows["reference"], windows["shifted"]
    # A category (its values' shares) and a number of many values (Sturges' histogram), which
    # Evidently bins differently.
    for name, column_type in (("zone_range", ColumnType.Categorical), ("y", ColumnType.Numerical)):
        ref, cur = reference[name], current[name]
        values = np.unique(np.concatenate([ref, cur]))
        numerical = column_type == ColumnType.Numerical
        ours = binned_shares(ref.to_numpy(), cur.to_numpy(), values, numerical=numerical)
        theirs = get_binned_data(ref, cur, column_type, 30, False)
        if not numerical:  # Evidently's values come in a set's order, ours sorted
            ours, theirs = (tuple(np.sort(share) for share in pair) for pair in (ours, theirs))
        for mine, truth in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(mine, truth, rtol=1e-12)
    assert len(ours[0]) == len(np.histogram_bin_edges(np.concatenate([ref, cur]), "sturges")) - 1


def test_missing_and_infinite_values_are_left_out_and_an_empty_side_refused():
    before = np.array([1.0, 2.0, 3.0, np.nan, np.inf] * 300)
    after = np.array([1.0, 2.0, 3.0, -np.inf] * 300)
    assert column_drift(before, after, categorical=False) == column_drift(
        before[np.isfinite(before)], after[np.isfinite(after)], categorical=False
    )
    with pytest.raises(ValueError, match="no finite value in the recent shots"):
        column_drift(before, np.array([np.nan, np.inf]), categorical=False)


def test_one_value_on_both_sides_is_no_drift():
    score = column_drift(np.zeros(500), np.zeros(400), categorical=False)
    assert (score.method, score.score, score.drifted) == (Z_TEST, 1.0, False)


@pytest.mark.parametrize("champion", ["informative", "never made"])
def test_quality_is_evidently_s(shots_frame, champion):
    made = shots_frame["made"].iloc[slice(*RECENT)].to_numpy(dtype=np.float64)
    noise = np.random.default_rng(1).random(len(made))
    p = np.clip(0.3 + 0.3 * made + 0.2 * noise, 0.01, 0.99)
    if champion == "never made":  # no "made" above 0.5: no precision, Evidently says 0
        p = 0.2 + 0.2 * noise
    labelled = pd.DataFrame({"outcome": made, "p_champion": p})
    truth = quality_numbers(quality_snapshot(labelled))
    ours = quality(made, p)
    assert (
        set(ours) == set(truth) == {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"}
    )
    for name, value in truth.items():
        assert _same(ours[name], value), (name, ours[name], value)
    if champion == "never made":
        assert ours["precision"] == ours["recall"] == ours["f1"] == 0.0
