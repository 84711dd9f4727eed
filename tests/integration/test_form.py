"""Player form in the stream equals player form in batch, through the real broker and store."""

from __future__ import annotations

import pytest
from pymongo import MongoClient

from models.data import load_shots
from models.features import build_features, feature_dict
from producers.csv_source import CsvSource
from producers.pacing import MaxPacer
from producers.replay import replay
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.integration

SHOTS = 10_000


def test_the_stream_stores_the_features_batch_training_computes_for_the_same_shots(
    settings_factory, pipeline, champion_version, games_csv
):
    """10,000 real shots replayed as fast as possible, so nearly every outcome arrives after
    the same player's next attempt: the silver ``shots`` collection still holds, for every
    shot, exactly the feature values training computes from the file, player form included."""
    settings = settings_factory()
    db = MongoClient(settings.mongodb())[settings.mongodb_database]
    with pipeline(settings):
        stats = replay(
            settings, CsvSource(games_csv), pacer=MaxPacer(), limit=SHOTS, show_progress=False
        )
        assert stats.produced == SHOTS
        wait_until(
            lambda: db.predictions.count_documents({"outcome": {"$exists": True}}) == SHOTS,
            300,
            f"{SHOTS:,} labelled predictions",
        )
    frame = load_shots(games_csv, limit=SHOTS)
    expected = build_features(frame)
    stored = {d["shot_id"]: d["features"] for d in db.shots.find({}, {"_id": 0})}
    assert len(stored) == SHOTS
    players_with_history = 0
    for game, event, row in zip(frame["game_id"], frame["game_event_id"], expected, strict=True):
        features = stored[f"{game}-{event}"]
        assert features == feature_dict(row), f"{game}-{event}"
        players_with_history += features["player_log_shots_before"] > 0
    # Not a vacuous match: most shots came after earlier shots of the same player.
    assert players_with_history > SHOTS * 0.8
