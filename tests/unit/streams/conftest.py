"""Fixtures for the stream's logic: a real LightGBM champion fitted on real shots."""

from __future__ import annotations

import lightgbm as lgb
import pytest

from models.features import CATEGORICAL, FEATURE_NAMES, build_features
from models.registry import Champion


@pytest.fixture(scope="session")
def champion(shots_frame):
    """30 trees on the 20,000 earliest shots, registered nowhere, as version 7."""
    train = shots_frame.iloc[:20000]
    data = lgb.Dataset(
        build_features(train),
        train["made"].to_numpy(),
        feature_name=list(FEATURE_NAMES),
        categorical_feature=list(CATEGORICAL),
    )
    booster = lgb.train({"objective": "binary", "verbosity": -1, "num_threads": 1}, data, 30)
    return Champion(name="test", version="7", model=booster)
