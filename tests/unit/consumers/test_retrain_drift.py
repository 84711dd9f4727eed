"""What the drift checks read from the store: the most recent window of shots."""

from __future__ import annotations

import numpy as np

from consumers.retrain_drift import recent_shots
from models.drift_report import shifted_shots
from models.features import FEATURE_NAMES, build_features
from parivision.store import SHOTS


def test_recent_shots_are_the_last_window_with_outcomes_and_probabilities(store, shots_frame):
    recent = recent_shots(store, 300)
    assert list(recent.columns) == [*FEATURE_NAMES, "outcome", "p_champion"]
    assert len(recent) == 300 and (recent["p_champion"] == 0.7).all()
    expected = build_features(shifted_shots(shots_frame.iloc[206_000:206_800]))[-300:]
    assert np.allclose(recent[list(FEATURE_NAMES)].to_numpy(), expected, equal_nan=True)
    store[SHOTS].docs[-1].pop("outcome")  # the last shot's outcome is not in yet
    assert recent_shots(store, 300)["outcome"].isna().sum() == 1
    oldest = recent_shots(store, 300, oldest=True)
    assert (oldest["p_champion"] == 0.45).all()
