"""The evidence: the most recent labelled shots in MongoDB, joined by shot id to the raw shots and
turned into features by the same :func:`models.features.build_features` the stream uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.features import FEATURE_NAMES, build_features, columns_from_records
from models.form import FORM_NAMES
from models.promotion.decision import PromotionError
from parivision import schemas
from parivision.settings import Settings
from parivision.store import OUTCOME_INDEX, SHOTS, read_newest


@dataclass
class Window:
    """The labelled shots both versions are measured on: features, outcomes and where from."""

    features: np.ndarray
    outcomes: np.ndarray
    game_dates: np.ndarray
    requested: int
    labelled_found: int
    # Labelled predictions whose raw shot is missing from its document or no longer validates.
    missing_raw: int = 0
    first_labelled_at: float | None = None
    last_labelled_at: float | None = None
    # Where player form came from: "stream" (stored with the shots) or "window" (recomputed).
    form_source: str = "stream"
    # Who shot them, for whom, in which games: how much of the league the window covers.
    player_ids: np.ndarray | None = None
    team_ids: np.ndarray | None = None
    game_ids: np.ndarray | None = None

    def coverage(self) -> dict[str, int]:
        """How many distinct players, teams and games the window's shots come from."""
        return {
            name: len(np.unique(ids)) if ids is not None else 0
            for name, ids in (
                ("players", self.player_ids),
                ("teams", self.team_ids),
                ("games", self.game_ids),
            )
        }

    @property
    def rows(self) -> int:
        return len(self.outcomes)

    def describe(self) -> dict[str, Any]:
        dates = self.game_dates
        return {
            "requested": self.requested,
            "shots": self.rows,
            "labelled_found": self.labelled_found,
            "missing_raw": self.missing_raw,
            "first_labelled_at": self.first_labelled_at,
            "last_labelled_at": self.last_labelled_at,
            "form_source": self.form_source,
            "first_game_date": int(dates.min()) if len(dates) else None,
            "last_game_date": int(dates.max()) if len(dates) else None,
            **self.coverage(),
        }


def window_from_documents(
    predictions: Iterable[Mapping[str, Any]],
    raw_shots: Iterable[Mapping[str, Any]],
    *,
    requested: int,
    stored_features: Iterable[Mapping[str, Any]] = (),
) -> Window:
    """Join labelled predictions to their raw shots by shot id and compute the features.

    ``predictions`` carry ``shot_id``, ``outcome`` and ``labelled_at``; ``raw_shots`` are the
    attempts as the sink stored them.  A prediction without a valid raw shot is counted in
    ``missing_raw`` and left out.

    Player form is taken from ``stored_features`` (the sink's ``shots`` documents: what the
    stream computed with the player's whole history) when every shot has it; otherwise it is
    computed from the window itself, in time order, and ``form_source`` says so.
    """
    stored_by_id = {
        doc["shot_id"]: doc.get("features") or {} for doc in stored_features if "shot_id" in doc
    }
    raw_by_id = {doc["shot_id"]: doc for doc in raw_shots if "shot_id" in doc}
    shots, outcomes, labelled_at = [], [], []
    found = missing = 0
    for prediction in predictions:
        found += 1
        raw = raw_by_id.get(prediction["shot_id"])
        try:
            shot = schemas.Shot.model_validate(raw).model_dump() if raw is not None else None
        except schemas.ValidationError:
            shot = None
        if shot is None or prediction.get("outcome") not in (0, 1, True, False):
            missing += 1
            continue
        shots.append(shot)
        outcomes.append(int(prediction["outcome"]))
        if isinstance(prediction.get("labelled_at"), int | float):
            labelled_at.append(float(prediction["labelled_at"]))
    # Oldest first: the order the stream saw them, and the order player form is computed in.
    order = sorted(
        range(len(shots)),
        key=lambda i: (shots[i]["game_date"], shots[i]["game_id"], shots[i]["game_event_id"] or 0),
    )
    shots = [{**shots[i], "made": outcomes[i]} for i in order]
    outcomes = [outcomes[i] for i in order]
    stored = [stored_by_id.get(shot["shot_id"], {}) for shot in shots]
    form_source = "stream" if all(FORM_NAMES[0] in f for f in stored) else "window"
    form = (
        np.array([[f.get(name, np.nan) for name in FORM_NAMES] for f in stored], dtype=np.float64)
        if form_source == "stream" and shots
        else None
    )
    features = (
        build_features(columns_from_records(shots), form=form)
        if shots
        else np.empty((0, len(FEATURE_NAMES)), dtype=np.float64)
    )
    return Window(
        features=features,
        outcomes=np.asarray(outcomes, dtype=np.int64),
        game_dates=np.asarray([s["game_date"] for s in shots], dtype=np.int64),
        requested=requested,
        labelled_found=found,
        missing_raw=missing,
        first_labelled_at=min(labelled_at) if labelled_at else None,
        last_labelled_at=max(labelled_at) if labelled_at else None,
        form_source=form_source,
        player_ids=np.asarray([s["player_id"] for s in shots], dtype=np.int64),
        team_ids=np.asarray([s["team_id"] for s in shots], dtype=np.int64),
        game_ids=np.asarray([s["game_id"] for s in shots], dtype=np.int64),
    )


def labelled_window(db, window: int) -> Window:
    """The most recent ``window`` labelled shots in a PariVision MongoDB database ``db``."""
    # Named, so nothing depends on a generated index name; creating it again is a no-op.
    db[SHOTS].create_index(**OUTCOME_INDEX)
    fields = {"_id": 0, "shot_id": 1, "outcome": 1, "labelled_at": 1, "raw": 1, "features": 1}
    docs = list(read_newest(db[SHOTS], "outcome_stored_at", fields, limit=window))
    predictions = [
        {key: doc[key] for key in ("shot_id", "outcome", "labelled_at") if key in doc}
        for doc in docs
    ]
    raw = [doc["raw"] for doc in docs if doc.get("raw")]
    stored = [
        {"shot_id": doc["shot_id"], "features": doc["features"]}
        for doc in docs
        if doc.get("features")
    ]
    return window_from_documents(predictions, raw, requested=window, stored_features=stored)


def _database(settings: Settings):
    from pymongo import MongoClient

    return MongoClient(settings.mongodb(), serverSelectionTimeoutMS=10_000)


def read_window(settings: Settings, db, window: int) -> Window:
    from pymongo.errors import PyMongoError

    try:
        if db is not None:
            return labelled_window(db, window)
        with _database(settings) as mongo:
            return labelled_window(mongo[settings.database()], window)
    except PyMongoError as error:
        raise PromotionError(
            f"cannot read labelled shots from MongoDB (database {settings.database()!r}): "
            f"{error}; start it with `parivision up` or set PARIVISION_MONGODB_URI"
        ) from error
