"""Player form in the stream equals player form in batch, through the real broker and store."""

from __future__ import annotations

import pytest
from pymongo import MongoClient

from models.data import load_shots
from models.features import build_features, feature_dict
from parivision.sources.csv_source import CsvSource
from producers.pacing import MaxPacer
from producers.replay import replay
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.integration

SHOTS = 10_000
HALF = 3_000  # the warm-start test: history, then as many shots replayed


def test_the_stream_stores_the_features_batch_training_computes_for_the_same_shots(
    settings_factory, pipeline, champion_version, games_csv
):
    """10,000 real shots replayed as fast as possible, so nearly every outcome arrives after
    the same player's next attempt: the silver ``shots`` collection still holds, for every
    shot, exactly the feature values training computes from the file, player form included."""
    settings = settings_factory()
    db = MongoClient(settings.mongodb())[settings.database()]
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


def test_a_warm_started_stream_stores_the_form_batch_computes_after_the_history(
    settings_factory, pipeline, champion_version, games_csv, tmp_path
):
    """The worker starts players' form from a history file (PARIVISION_FORM_HISTORY, the
    champion's training shots) and replays the shots that follow it: every stored feature equals
    what batch training computes over history and shots together, not from a cold start."""
    import pandas as pd

    raw = pd.read_csv(games_csv, nrows=2 * HALF, low_memory=False)
    history, later = tmp_path / "history.csv", tmp_path / "later.csv"
    raw.iloc[:HALF].to_csv(history, index=False)
    raw.iloc[HALF:].to_csv(later, index=False)
    settings = settings_factory(form_history=str(history))
    db = MongoClient(settings.mongodb())[settings.database()]
    with pipeline(settings):
        stats = replay(settings, CsvSource(later), pacer=MaxPacer(), show_progress=False)
        assert stats.produced == HALF
        wait_until(
            lambda: db.predictions.count_documents({"outcome": {"$exists": True}}) == HALF,
            300,
            f"{HALF:,} labelled predictions",
        )
    frame = load_shots(games_csv, limit=2 * HALF)
    expected = build_features(frame)[HALF:]
    cold = build_features(frame.iloc[HALF:])
    stored = {d["shot_id"]: d["features"] for d in db.shots.find({}, {"_id": 0})}
    assert len(stored) == HALF
    warmed = 0
    rows = zip(frame["game_id"][HALF:], frame["game_event_id"][HALF:], expected, cold, strict=True)
    for game, event, row, cold_row in rows:
        assert stored[f"{game}-{event}"] == feature_dict(row), f"{game}-{event}"
        warmed += feature_dict(row) != feature_dict(cold_row)
    assert warmed > HALF * 0.5  # the history counted for most shots
