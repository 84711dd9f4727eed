"""Scoring micro-batches with the champion and joining outcomes: the stream's logic, no Kafka.

Kept apart from the Faust app so it can be tested and benchmarked on its own; the app only moves
bytes between topics and tables and calls these two methods.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from models.features import FEATURE_NAMES, build_features, columns_from_records, feature_dict
from models.online import LiveMetrics, make_learner
from models.registry import Champion

# Probabilities are clipped so fair odds stay finite and log loss stays defined.
_P_MIN, _P_MAX = 1e-4, 1 - 1e-4


class Scorer:
    """Scores shots with the champion and an online learner; learns when outcomes arrive.

    Args:
        champion: the loaded champion model.
        learner: name of the River learner kept next to it (see :data:`models.online.LEARNERS`).
    """

    def __init__(self, champion: Champion, learner: str = "logreg") -> None:
        self.champion = champion
        self.learner_name = learner
        self.learner = make_learner(learner)
        self.champion_metrics = LiveMetrics()
        self.online_metrics = LiveMetrics()
        self.scored = 0
        self.labelled = 0

    def score_batch(self, shots: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """One scored record per shot, in order (see :class:`parivision.schemas.ScoredShot`)."""
        if not shots:
            return []
        # One champion for the whole batch, even if another is swapped in right after.
        champion = self.champion
        matrix = build_features(columns_from_records(shots))
        p_champion = np.clip(champion.predict(matrix), _P_MIN, _P_MAX).tolist()
        now = time.time()
        version = champion.version
        learner = self.learner
        out = []
        for shot, row, p in zip(shots, matrix, p_champion, strict=True):
            features = feature_dict(row)
            p_online = learner.predict_proba_one(features).get(True, 0.5)
            p_online = min(max(p_online, _P_MIN), _P_MAX)
            produced_at = shot.get("produced_at") or now
            out.append(
                {
                    "shot_id": shot["shot_id"],
                    "game_id": shot["game_id"],
                    "player_id": shot["player_id"],
                    "player_name": shot.get("player_name", ""),
                    "replay_id": shot.get("replay_id", ""),
                    "model_version": version,
                    "p_champion": p,
                    "p_online": p_online,
                    "online_learner": self.learner_name,
                    "fair_odds": 1.0 / p,
                    "features": features,
                    "produced_at": produced_at,
                    "scored_at": now,
                    "latency_ms": max(0.0, (now - produced_at) * 1000.0),
                    "labelled": False,
                }
            )
        self.scored += len(out)
        return out

    def swap(self, champion: Champion) -> Champion:
        """Score from the next batch on with ``champion``; return the one it replaces.

        Call it from the thread that scores, between two batches: every shot is then scored
        once, by the old champion or the new, and its record names which.
        """
        previous, self.champion = self.champion, champion
        return previous

    def label(self, kept: dict[str, Any], made: int) -> dict[str, Any]:
        """Join an outcome to the scored record kept for it: learn, update metrics, and return
        the labelled record to publish."""
        features = kept["features"]
        # The learner predicted this shot when it was scored; only now may it learn from it.
        self.learner.learn_one(features, bool(made))
        self.champion_metrics.update(made, kept["p_champion"])
        self.online_metrics.update(made, kept["p_online"])
        self.labelled += 1
        return {
            "shot_id": kept["shot_id"],
            "game_id": kept["game_id"],
            "player_id": kept["player_id"],
            "replay_id": kept.get("replay_id", ""),
            "model_version": kept["model_version"],
            "p_champion": kept["p_champion"],
            "p_online": kept["p_online"],
            "online_learner": kept.get("online_learner", self.learner_name),
            "fair_odds": kept["fair_odds"],
            "scored_at": kept["scored_at"],
            "labelled": True,
            "outcome": int(made),
            "labelled_at": time.time(),
        }

    def live_metrics(self) -> dict[str, Any]:
        return {
            "scored": self.scored,
            "labelled": self.labelled,
            "champion": {"version": self.champion.version, **self.champion_metrics.as_dict()},
            "online": {"learner": self.learner_name, **self.online_metrics.as_dict()},
        }


def compact(record: dict[str, Any]) -> dict[str, Any]:
    """The scored record as kept in the pending table: features as a list in
    :data:`FEATURE_NAMES` order (half the bytes of the dict in every changelog message)."""
    features = record["features"]
    return {**record, "features": [features.get(name) for name in FEATURE_NAMES]}


def expand(kept: dict[str, Any]) -> dict[str, Any]:
    """Undo :func:`compact`."""
    values = kept["features"]
    return {
        **kept,
        "features": {
            name: value
            for name, value in zip(FEATURE_NAMES, values, strict=True)
            if value is not None
        },
    }
