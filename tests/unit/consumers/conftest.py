"""Fixtures of the consumers' unit tests."""

from __future__ import annotations

import pytest

from models.drift_report import shifted_shots
from tests.unit.consumers.retrain_fakes import Database, _store


@pytest.fixture
def store(shots_frame):
    """800 real shots, then 800 shot 8 ft further out and made less, which the champion
    still thinks are easy (its errors grow)."""
    db = Database()
    _store(db, shots_frame.iloc[205_000:205_800], start=1000.0, p=0.45)
    _store(db, shifted_shots(shots_frame.iloc[206_000:206_800]), start=2000.0, p=0.7)
    return db
