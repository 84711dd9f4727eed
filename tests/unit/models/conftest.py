"""Fixtures for the model tests: slices of the real shots and a throwaway MLflow store."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models import registry
from models.features import build_features
from tests.unit.models.store import (
    Collection,
    FakeDatabase,
    booster,
    documents,
    register,
    shot_documents,
)


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
def registry_settings(tmp_path):
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


@pytest.fixture
def store(registry_settings, fit_and_check, recent_shots):
    """A store with a good champion (v1), a worse (v2) and a better (v3) challenger, and a
    database whose 3,000 labelled shots none of them was fitted on."""
    x_fit, y_fit, _, _ = fit_and_check
    # Shadows off and no coverage asked: the offline rule alone (test_shadow turns them on).
    settings = registry_settings(model_name="promotion-unit", shadow_shots=0)
    fair = register(settings, booster(x_fit[-3000:], y_fit[-3000:], 10), "fair")
    worse = register(settings, booster(x_fit[:2000], y_fit[:2000], 3), "worse")
    better = register(settings, booster(x_fit, y_fit, 60), "better")
    registry.set_champion(settings, fair)
    _, _, x_check, _ = fit_and_check
    predictions, raw, stored = documents(recent_shots.iloc[30_000:33_000], matrix=x_check)
    predictions.append({"shot_id": "unlabelled", "replay_id": "r1"})  # no outcome yet: skipped
    db = FakeDatabase(shots=Collection(shot_documents(predictions, raw, stored)))
    events = []
    publish = lambda _settings, event: events.append(json.loads(json.dumps(event)))  # noqa: E731
    return settings, db, events, publish, (fair, worse, better)
