"""An in-memory store and stand-ins for what the retrain loop calls (training, the challenge,
the registry's tags, the judge of shadows): what the retrain loop's tests share."""

from __future__ import annotations

import copy
from types import SimpleNamespace

from consumers.retrain_trigger import RetrainLoop
from models.drift import TriggerConfig
from models.features import build_features, feature_dict
from models.reference import CHAMPION, Reference, reference_sample
from parivision.settings import Settings
from parivision.store import SHOTS

NO_CHAMPION = (None, None, "no champion yet")


_MISSING = object()


def _field(doc, key):
    """A (dotted) field of a document, as MongoDB reads it; _MISSING when absent."""
    for part in key.split("."):
        doc = doc.get(part, _MISSING) if isinstance(doc, dict) else _MISSING
    return doc


def _matches(doc, query):
    for key, want in query.items():
        have = _field(doc, key)
        if isinstance(want, dict):
            if "$exists" in want and (have is not _MISSING) != want["$exists"]:
                return False
            if "$gt" in want and not (have is not None and have > want["$gt"]):
                return False
            if "$gte" in want and not (have is not None and have >= want["$gte"]):
                return False
            if "$lte" in want and not (have is not None and have <= want["$lte"]):
                return False
            if "$in" in want and have not in want["$in"]:
                return False
        elif have != want:
            return False
    return True


class Cursor:
    def __init__(self, docs):
        self.docs = docs

    def sort(self, key, order):
        return Cursor(sorted(self.docs, key=lambda d: d[key], reverse=order == -1))

    def skip(self, n):
        return Cursor(self.docs[n:])

    def limit(self, n):
        return Cursor(self.docs[:n])

    def __iter__(self):
        return iter(copy.deepcopy(self.docs))


class Collection:
    """The few pymongo calls the loop makes, over a list."""

    def __init__(self):
        self.docs = []

    def find(self, query=None, projection=None):
        return Cursor([d for d in self.docs if _matches(d, query or {})])

    def find_one(self, query=None, projection=None, sort=None):
        found = self.find(query)
        for key, order in sort or []:
            found = found.sort(key, order)
        return next(iter(found), None)

    def count_documents(self, query):
        return len(self.find(query).docs)

    def insert_one(self, doc):
        doc = {"_id": len(self.docs), **doc}
        self.docs.append(doc)
        return SimpleNamespace(inserted_id=doc["_id"])

    def replace_one(self, query, doc):
        i = next(i for i, d in enumerate(self.docs) if _matches(d, query))
        self.docs[i] = {"_id": self.docs[i]["_id"], **doc}

    def update_one(self, query, update):
        for doc in self.docs:
            if _matches(doc, query):
                doc.update(update["$set"])
                return

    def update_many(self, query, update):
        for doc in self.docs:
            if _matches(doc, query):
                doc.update(update["$set"])


class Database(dict):
    def __missing__(self, name):
        self[name] = Collection()
        return self[name]


def _store(db, frame, *, start: float, p: float):
    """The shots as the sink stores them: one document a shot (parivision.store)."""
    x = build_features(frame)
    for i, (row, features) in enumerate(zip(frame.to_dict("records"), x, strict=True)):
        at = start + i
        shot = {k: v for k, v in row.items() if k != "made"}
        shot |= {"shot_id": f"{shot['game_id']}-{shot['game_event_id']}"}
        db[SHOTS].docs.append(
            {
                "_id": shot["shot_id"],
                "shot_id": shot["shot_id"],
                "raw": shot,
                "features": feature_dict(features),
                # The scored record's context, as the sink stores it.
                **{k: shot[k] for k in ("game_id", "player_id", "team_id")},
                "p_champion": p,
                "scored_at": at,
                "stored_at": at,
                "outcome": int(row["made"]),
                "labelled_at": at + 0.5,
                "outcome_stored_at": at + 0.75,
            }
        )


def _champion(shots_frame) -> tuple[str, Reference, str]:
    """A champion whose training sample is 2,000 real shots from before the stored ones.

    Its tests use windows of 1,000 shots: Evidently's distances (what it uses against more
    than 1,000 reference rows) on a few hundred shots, a game or two, drift by chance.
    """
    shots = shots_frame.iloc[203_000:205_000]
    sample = reference_sample(build_features(shots), shots["made"].to_numpy())
    return "1", Reference(sample, CHAMPION, "champion v1's training sample", "1"), ""


class Recorder:
    def __init__(self):
        self.frames, self.challenges, self.tags = [], [], []

    def train(self, settings, frame, **kwargs):
        self.frames.append((frame, kwargs))
        return SimpleNamespace(
            version=str(len(self.frames) + 1),
            run_id="run",
            rows=len(frame),
            candidate="lightgbm",
            metrics={"log_loss": 0.6},
        )

    def challenge(self, settings, version, *, window, db):
        self.challenges.append((version, window))
        return SimpleNamespace(
            event="refused",
            reason="not better",
            version="1",
            as_event=lambda: {"event": "refused", "challenger_version": version},
        )

    def tag_version(self, settings, version, tags):
        self.tags.append((version, tags))


class Judge:
    """Stands in for the judge of shadows (models.promotion.judge, with its own tests): what
    each poll gave it."""

    def __init__(self):
        self.polls = []
        self.shadow = None  # the shadow being judged, if any

    def poll(self, fresh):
        self.polls.append(list(fresh))


# The store alone (no registry here to read a lineage from), and no coverage asked of the
# window unless a test asks for it.
UNIT = {
    "mongodb_database": "unit",
    "retrain_store_only": True,
    "promotion_min_players": 0,
    "promotion_min_teams": 0,
    "promotion_min_games": 0,
}


def _loop(db, tmp_path, recorder, clock, champion=NO_CHAMPION, window=300, settings=None, **config):
    defaults = {"min_new_labelled": 0, "every_s": None, "drift_share": 0.25, "cooldown_s": 60}
    return RetrainLoop(
        Settings(home=tmp_path, **(UNIT | (settings or {}))),
        db,
        TriggerConfig(**(defaults | config)),
        window=window,
        holdout=200,
        train=recorder.train,
        challenge=recorder.challenge,
        champion=lambda: champion,
        tag_version=recorder.tag_version,
        judge=Judge(),
        reference_ids=lambda champion: set(),
        clock=lambda: clock[0],
    )


def _metric(loop, line_start: str) -> float | None:
    for line in loop.metrics.render().decode().splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return None
