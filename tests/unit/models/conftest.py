"""Fixtures for the model tests: slices of the real shots and a throwaway MLflow store."""

from __future__ import annotations

import numpy as np
import pytest

from models.features import build_features


@pytest.fixture(scope="session")
def recent_shots(shots_frame):
    """The most recent 40,000 real shots (2019), time-sorted: 30,000 to fit, 10,000 to check."""
    return shots_frame.iloc[-40_000:].reset_index(drop=True)


@pytest.fixture(scope="session")
def fit_and_check(recent_shots):
    """Feature matrices and outcomes of the 30,000 earlier and 10,000 later recent shots."""
    # One pass, so the later shots' player form includes the earlier shots, as it would live.
    matrix = build_features(recent_shots)
    made = recent_shots["made"].to_numpy(dtype=np.int64)
    return matrix[:30_000], made[:30_000], matrix[30_000:], made[30_000:]


@pytest.fixture
def settings_factory(tmp_path):
    """Factory: Settings on a fresh SQLite MLflow store under tmp_path, configured for MLflow."""
    from infra.mlflow_store import configure_mlflow
    from parivision.settings import Settings

    def make(**overrides) -> Settings:
        settings = Settings(
            home=tmp_path / "home",
            mlflow_tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
            **overrides,
        )
        configure_mlflow(settings)
        return settings

    return make
