"""A store written by an older version (a collection a layer) is moved to one document a shot,
on the real MongoDB server, losing nothing; the layers read back through their views as they
were written; a move stopped half-way is finished by the next start.

The truth is what the test wrote into the old collections, not what the code under test reads.
"""

from __future__ import annotations

import uuid

import pytest
from pymongo import MongoClient

from consumers.store_layout import MOVING, ensure_layout, layer_counts, legacy
from models.features import build_features, feature_dict
from parivision.store import FEATURES_VIEW, PREDICTIONS_VIEW, RAW_VIEW, SHOTS

pytestmark = pytest.mark.integration


def _legacy_store(db, frame) -> tuple[dict, dict, dict]:
    """Real shots as the older sink stored them: every attempt in ``shots_raw``, the features
    of all but the last 20 in ``shots``, and predictions (the first half labelled) for those."""
    raw, features, predictions = {}, {}, {}
    matrix = build_features(frame)
    for i, (row, x) in enumerate(zip(frame.to_dict("records"), matrix, strict=True)):
        shot_id = f"{row['game_id']}-{row['game_event_id']}"
        shot = {k: v for k, v in row.items() if k != "made"} | {"shot_id": shot_id}
        raw[shot_id] = {**shot, "replay_id": "old", "received_at": 100.0 + i}
        if i >= len(frame) - 20:
            continue  # attempts the stream had not scored yet
        features[shot_id] = {
            "shot_id": shot_id,
            "game_id": shot["game_id"],
            "player_id": shot["player_id"],
            "replay_id": "old",
            "features": feature_dict(x),
            "stored_at": 101.0 + i,
        }
        predictions[shot_id] = {
            "shot_id": shot_id,
            "game_id": shot["game_id"],
            "player_id": shot["player_id"],
            "team_id": shot["team_id"],
            "replay_id": "old",
            "model_version": "1",
            "p_champion": 0.4,
            "scored_at": 100.5 + i,
            "labelled": False,
            "stored_at": 101.0 + i,
            **({"outcome": int(row["made"]), "labelled_at": 102.0 + i} if i % 2 == 0 else {}),
        }
    for name, docs in (("shots_raw", raw), ("shots", features), ("predictions", predictions)):
        db[name].create_index([("shot_id", 1)], unique=True, name="shot_id_unique")
        db[name].insert_many([dict(d) for d in docs.values()])
    return raw, features, predictions


def _with_outcome_stored(predictions) -> dict[str, dict]:
    return {
        shot_id: {**p, **({"outcome_stored_at": p["labelled_at"]} if "labelled_at" in p else {})}
        for shot_id, p in predictions.items()
    }


def _without_id(docs) -> dict[str, dict]:
    return {d["shot_id"]: {k: v for k, v in d.items() if k != "_id"} for d in docs}


@pytest.fixture
def old_store(services, shots_frame):
    endpoints, _ = services
    client = MongoClient(endpoints.mongodb)
    db = client[f"layout{uuid.uuid4().hex[:8]}"]
    written = _legacy_store(db, shots_frame.iloc[200_000:200_500])
    yield db, written
    client.drop_database(db.name)
    client.close()


def test_an_old_store_moves_to_one_document_a_shot_and_reads_back_as_it_was(old_store):
    db, (raw, features, predictions) = old_store
    assert legacy(db)
    ensure_layout(db)
    assert not legacy(db)
    assert db[SHOTS].count_documents({}) == len(raw) == 500
    assert layer_counts(db) == {
        RAW_VIEW: 500,
        "features": 480,
        "predictions": 480,
        "outcomes": 240,
    }
    # Each layer, read through its view, is what was written in its collection.
    assert _without_id(db[RAW_VIEW].find({})) == raw
    assert _without_id(db[FEATURES_VIEW].find({})) == features
    # An outcome the old store had counts as stored by the time it was labelled, so the retrain
    # loop, which polls on when outcomes were stored, finds it.
    assert _without_id(db[PREDICTIONS_VIEW].find({})) == _with_outcome_stored(predictions)
    # And one document holds all of a shot.
    shot_id = next(iter(predictions))
    doc = db[SHOTS].find_one({"_id": shot_id})
    assert doc["raw"] == raw[shot_id] and doc["features"] == features[shot_id]["features"]
    assert doc["outcome"] == predictions[shot_id]["outcome"]
    # Run again: nothing to move, nothing changes.
    ensure_layout(db)
    assert db[SHOTS].count_documents({}) == 500


def test_a_move_stopped_half_way_is_finished_by_the_next_start(old_store):
    db, (raw, _features, predictions) = old_store
    # Stopped after renaming the old collections and moving the first 100 predictions.
    for old, moving in MOVING.items():
        db[old].rename(moving)
    from consumers.store_layout import _collections, _merge

    found = _collections(db)
    first = list(db[MOVING["predictions"]].find({}, {"_id": 0}).limit(100))
    _merge(db, first, True, db[MOVING["shots_raw"]], db[MOVING["shots"]], found)
    assert db[SHOTS].count_documents({}) == 100 and legacy(db)

    ensure_layout(db)
    assert not legacy(db) and not set(MOVING.values()) & set(db.list_collection_names())
    assert db[SHOTS].count_documents({}) == len(raw)
    assert _without_id(db[PREDICTIONS_VIEW].find({})) == _with_outcome_stored(predictions)
