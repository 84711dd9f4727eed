"""An in-memory stand-in for the MongoDB queries promotion and the judge of shadows make, and
models registered by hand in a real MLflow store: what the promotion and shadow tests share."""

from __future__ import annotations

import math

import lightgbm as lgb
import numpy as np

from models.features import CATEGORICAL, FEATURE_NAMES, FEATURE_SET, feature_dict
from models.shot_model import ShotModel


def documents(frame, *, start_ts=1_700_000_000.0, matrix=None):
    """Predictions (with outcome and labelled_at), raw shots and, given the stream's feature
    ``matrix`` for the frame's rows, the silver feature documents, as the sink stores them."""
    raw, predictions, stored = [], [], []
    for i, row in enumerate(frame.to_dict("records")):
        shot_id = f"{row['game_id']}-{row['game_event_id']}"
        raw.append({**{k: v for k, v in row.items() if k != "made"}, "shot_id": shot_id})
        predictions.append(
            {
                "shot_id": shot_id,
                "outcome": int(row["made"]),
                "labelled_at": start_ts + i,
                "outcome_stored_at": start_ts + i + 0.25,
            }
        )
        if matrix is not None:
            stored.append({"shot_id": shot_id, "features": feature_dict(matrix[i])})
    return predictions, raw, stored


def shot_documents(predictions, raw=(), stored=()):
    """The parts above as the sink stores them now: one document a shot (parivision.store)."""
    docs: dict[str, dict] = {}
    for doc in predictions:
        docs.setdefault(doc["shot_id"], {"_id": doc["shot_id"]}).update(doc)
    for part, docs_of in (("raw", raw), ("features", stored)):
        for doc in docs_of:
            shot_id = doc["shot_id"]
            shot = docs.setdefault(shot_id, {"_id": shot_id, "shot_id": shot_id})
            shot[part] = doc if part == "raw" else doc["features"]
    return list(docs.values())


class Cursor:
    def __init__(self, docs):
        self.docs = docs

    def sort(self, key, direction):
        self.docs = sorted(self.docs, key=lambda d: d.get(key, -math.inf), reverse=direction < 0)
        return self

    def limit(self, n):
        self.docs = self.docs[:n]
        return self

    def __iter__(self):
        return iter(self.docs)


class Collection:
    def __init__(self, docs):
        self.docs = list(docs)
        self.indexes = []

    def create_index(self, keys, name):
        self.indexes.append(name)

    def find(self, query, projection=None):
        def matches(doc):
            for key, condition in query.items():
                have = doc.get(key)
                if "$exists" in condition and (key in doc) != condition["$exists"]:
                    return False
                if "$in" in condition and have not in condition["$in"]:
                    return False
                if "$gte" in condition and not (have is not None and have >= condition["$gte"]):
                    return False
                if "$gt" in condition and not (have is not None and have > condition["$gt"]):
                    return False
                if "$lte" in condition and not (have is not None and have <= condition["$lte"]):
                    return False
            return True

        return Cursor([dict(d) for d in self.docs if matches(d)])


class FakeDatabase(dict):
    """Just the queries :func:`models.promotion.labelled_window` and
    :func:`models.promotion.shadow.gather` make."""


def register(settings, booster, tag: str, feature_set: str = FEATURE_SET) -> str:
    import mlflow

    from models.shot_model import log_shot_model

    with mlflow.start_run(run_name=tag):
        mlflow.set_tags({"feature_set": feature_set})
        info = log_shot_model(
            ShotModel("lightgbm", booster),
            np.zeros((5, len(FEATURE_NAMES))),
            registered_model_name=settings.registered_model(),
        )
    return str(info.registered_model_version)


def booster(x, y, rounds):
    data = lgb.Dataset(
        x, y, feature_name=list(FEATURE_NAMES), categorical_feature=list(CATEGORICAL)
    )
    params = {"objective": "binary", "verbosity": -1, "num_threads": 1, "learning_rate": 0.1}
    return lgb.train(params, data, rounds)
