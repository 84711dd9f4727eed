"""What the MongoDB store holds: its collections and the shape of their documents.

The sink (:mod:`consumers.mongo_sink`) writes them; the API, the retrain loop, promotion, the
demo and the benchmarks read them.  Every document of the first three is keyed on ``shot_id``
with a unique index, so a record delivered twice stays one document.

- ``shots_raw`` (bronze): an attempt as it came (:class:`parivision.schemas.Shot` fields), plus
  ``received_at``.
- ``shots`` (silver): :func:`features_document`, the features the stream scored the shot with
  (the player's form included).
- ``predictions`` (gold): the ``shots.scored`` record (:class:`parivision.schemas.ScoredShot`,
  without its features) plus ``stored_at``; once the outcome is in, :func:`label_fields` too.
- ``retrain_events``: one document per retrain of the retrain loop: why, when, the challenger
  trained and the promotion decision (or the error).
"""

from __future__ import annotations

from typing import Any

RAW, SHOTS, PREDICTIONS = "shots_raw", "shots", "predictions"
RETRAIN_EVENTS = "retrain_events"
# Predictions by when their outcome came, newest first: the promotion window reads the newest
# labels, the retrain loop's polls a range since its last look.  One definition for both, as
# the server refuses a second index of that name with other keys.
LABELLED_AT_INDEX: dict[str, Any] = {"keys": [("labelled_at", -1)], "name": "labelled_at"}


def features_document(scored: dict[str, Any], features: dict[str, Any], now: float) -> dict:
    """The ``shots`` document of a scored shot: its ids and the features it was scored with."""
    return {
        "shot_id": scored["shot_id"],
        "game_id": scored.get("game_id"),
        "player_id": scored.get("player_id"),
        "replay_id": scored.get("replay_id", ""),
        "features": features,
        "stored_at": now,
    }


def label_fields(label: dict[str, Any], now: float) -> dict[str, Any]:
    """What a labelled ``shots.scored`` record sets on its ``predictions`` document."""
    return {
        "outcome": label["outcome"],
        "labelled_at": label["labelled_at"],
        "replay_id": label.get("replay_id", ""),
        "model_version": label["model_version"],
        "p_champion": label["p_champion"],
        "p_online": label["p_online"],
        "shadow_version": label.get("shadow_version"),
        "p_shadow": label.get("p_shadow"),
        "game_id": label["game_id"],
        "player_id": label["player_id"],
        "stored_at": now,
    }
