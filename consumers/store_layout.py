"""The store's layout on the server: the ``shots`` collection, its indexes, the layers' views,
and the move of a store written by an older version (a collection a layer) to one document a
shot.

:func:`ensure_layout` is run by every writer and reader that starts (the sink, the API, the
retrain loop); it is cheap when the layout is there already, and safe to run from several
processes at once: the move renames the old collections first, so only one process moves them,
and one stopped half-way is finished by the next.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from pymongo.errors import BulkWriteError, OperationFailure

from parivision.store import INDEXES, RAW_VIEW, SHOTS, VIEWS, shot_document

log = logging.getLogger(__name__)

# The older layout: a collection a layer, each document with ``shot_id``.
LEGACY_RAW, LEGACY_FEATURES, LEGACY_PREDICTIONS = "shots_raw", "shots", "predictions"
# Where the move keeps them until it is done.
MOVING = {
    LEGACY_RAW: "moving_shots_raw",
    LEGACY_FEATURES: "moving_shot_features",
    LEGACY_PREDICTIONS: "moving_predictions",
}
_CHUNK = 2000


def _collections(db) -> dict[str, str]:
    """Name -> type ("collection" or "view") of what the database holds."""
    return {info["name"]: info.get("type", "collection") for info in db.list_collections()}


def legacy(db) -> bool:
    """Whether the database holds a store of the older layout (or one half-moved)."""
    found = _collections(db)
    moving = any(name in found for name in MOVING.values())
    return moving or "collection" in (found.get(LEGACY_RAW), found.get(LEGACY_PREDICTIONS))


def ensure_layout(db) -> None:
    """Move an older store to one document a shot if there is one, then make sure of the
    indexes and the views."""
    if legacy(db):
        moved = migrate(db)
        log.warning("store %s: moved %d shots to one document a shot", db.name, moved)
    shots = db[SHOTS]
    for index in INDEXES:
        shots.create_index(**index)
    found = _collections(db)
    for name, pipeline in VIEWS.items():
        if name not in found:
            try:
                db.create_collection(name, viewOn=SHOTS, pipeline=pipeline)
            except OperationFailure as error:
                if "exist" not in str(error).lower():  # another process made it first
                    raise


def migrate(db) -> int:
    """Merge the older layout's three collections into ``shots``, one document a shot; return
    how many shots were written.  Nothing is lost if it stops half-way: run it again."""
    found = _collections(db)
    for old, moving in MOVING.items():
        if found.get(old) == "collection" and moving not in found:
            try:
                db[old].rename(moving)
            except OperationFailure as error:
                if "exist" not in str(error).lower():
                    raise
    found = _collections(db)
    raw, features, predictions = (db[MOVING[name]] for name in MOVING)
    written = 0
    # Every shot that had a prediction, with its attempt and features; then the attempts alone.
    for source in (predictions, raw, features):
        if source.name not in found:
            continue
        batch: list[dict[str, Any]] = []
        for doc in source.find({}, {"_id": 0}):
            batch.append(doc)
            if len(batch) >= _CHUNK:
                written += _merge(db, batch, source is predictions, raw, features, found)
                batch = []
        written += _merge(db, batch, source is predictions, raw, features, found)
    for source in (predictions, raw, features):
        if source.name in found:
            source.drop()
    return written


def _merge(
    db, batch: list[dict[str, Any]], predicted: bool, raw, features, found: dict[str, str]
) -> int:
    """Insert the shots of ``batch`` (predictions when ``predicted``, else attempts or
    features) that ``shots`` does not have yet, with their parts."""
    ids = [doc["shot_id"] for doc in batch if "shot_id" in doc]
    if not ids:
        return 0
    have = {doc["_id"] for doc in db[SHOTS].find({"_id": {"$in": ids}}, {"_id": 1})}
    ids = [shot_id for shot_id in ids if shot_id not in have]
    if not ids:
        return 0

    def by_id(collection) -> dict[str, dict[str, Any]]:
        if collection.name not in found:
            return {}
        return {
            doc["shot_id"]: doc
            for doc in collection.find({"shot_id": {"$in": ids}}, {"_id": 0})
            if "shot_id" in doc
        }

    raws, feats = by_id(raw), by_id(features)
    wanted = set(ids)
    docs = []
    for doc in batch:
        shot_id = doc.get("shot_id")
        if shot_id not in wanted:
            continue
        wanted.discard(shot_id)
        prediction = doc if predicted else None
        feature = feats.get(shot_id)
        scored = None
        if prediction is not None or feature is not None:
            scored = {**(prediction or {"shot_id": shot_id})}
            if feature is not None:
                scored["features"] = feature.get("features", {})
        first = prediction or feature or {}
        stored_at = first.get("stored_at") or raws.get(shot_id, {}).get("received_at", 0.0)
        merged = shot_document(raws.get(shot_id), scored, None, stored_at)
        if prediction is not None and "labelled_at" in prediction:
            # When the older store got the outcome is not known; it had it by its labelled_at.
            merged["outcome_stored_at"] = prediction["labelled_at"]
        if prediction is None and feature is not None:
            for key in ("game_id", "player_id", "replay_id"):
                merged[key] = feature.get(key, merged.get(key))
        docs.append(merged)
    with contextlib.suppress(BulkWriteError):  # another process moved some of them first
        db[SHOTS].insert_many(docs, ordered=False)
    return len(docs)


def layer_counts(db) -> dict[str, int]:
    """How many shots each layer holds: attempts, features, predictions and outcomes."""
    shots = db[SHOTS]
    return {
        RAW_VIEW: shots.count_documents({"raw": {"$exists": True}}),
        "features": shots.count_documents({"features": {"$exists": True}}),
        "predictions": shots.count_documents({"scored_at": {"$exists": True}}),
        "outcomes": shots.count_documents({"outcome": {"$exists": True}}),
    }
