"""The retrain loop on an in-memory store: it reads the right shots, records every retrain with
its reasons, counts, drift numbers, version and decision, and answers a manual request."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
import pytest

from consumers.retrain_trigger import (
    EVENTS,
    RetrainLoop,
    errors_of,
    labelled_frame,
    request_retrain,
)
from models.drift import DATA_DRIFT, ERROR_DRIFT, MANUAL, TriggerConfig
from models.features import build_features, feature_dict
from parivision.settings import Settings
from tests.unit.models.test_drift import drifted_shots


def _matches(doc, query):
    for key, want in query.items():
        have = doc.get(key)
        if isinstance(want, dict):
            if "$exists" in want and (key in doc) != want["$exists"]:
                return False
            if "$gt" in want and not (have is not None and have > want["$gt"]):
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

    def find_one(self, query=None, sort=None):
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


class Database(dict):
    def __missing__(self, name):
        self[name] = Collection()
        return self[name]


def _store(db, frame, *, start: float, p: float):
    x = build_features(frame)
    for i, (row, features) in enumerate(zip(frame.to_dict("records"), x, strict=True)):
        at = start + i
        shot = {k: v for k, v in row.items() if k != "made"}
        shot |= {"shot_id": f"{shot['game_id']}-{shot['game_event_id']}"}
        db["shots_raw"].docs.append(shot)
        db["shots"].docs.append(
            {"shot_id": shot["shot_id"], "features": feature_dict(features), "stored_at": at}
        )
        db["predictions"].docs.append(
            {
                "shot_id": shot["shot_id"],
                "p_champion": p,
                "outcome": int(row["made"]),
                "labelled_at": at + 0.5,
            }
        )


@pytest.fixture
def store(shots_frame):
    db = Database()
    _store(db, shots_frame.iloc[205_000:205_800], start=1000.0, p=0.45)
    _store(db, drifted_shots(shots_frame.iloc[206_000:230_000], 800), start=2000.0, p=0.33)
    return db


class Recorder:
    def __init__(self):
        self.frames, self.challenges = [], []

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


def _loop(db, tmp_path, recorder, clock, **config):
    defaults = {"min_new_labelled": 0, "every_s": None, "drift_share": 0.5, "cooldown_s": 60}
    return RetrainLoop(
        Settings(home=tmp_path, mongodb_database="unit"),
        db,
        TriggerConfig(**(defaults | config)),
        window=300,
        holdout=200,
        train=recorder.train,
        challenge=recorder.challenge,
        clock=lambda: clock[0],
    )


def test_labelled_frame_leaves_out_the_holdout_and_is_in_game_time_order(store):
    frame = labelled_frame(store, holdout=200)
    assert len(frame) == 1400
    assert frame["game_date"].is_monotonic_increasing
    assert set(frame["made"]) == {0, 1}


def test_errors_follow_the_predictions():
    assert errors_of([{"outcome": 1, "p_champion": 0.25}, {"outcome": 0}]) == [0.75]


def test_drift_starts_a_retrain_that_is_recorded_with_its_numbers(store, tmp_path):
    recorder, clock = Recorder(), [5000.0]
    loop = _loop(store, tmp_path, recorder, clock)
    event = loop.step()
    assert event is not None
    assert DATA_DRIFT in event["reasons"] and ERROR_DRIFT in event["reasons"]
    assert event["drift"]["data"]["share"] > 0.5
    assert event["drift"]["adwin"]["detections"] >= 1
    assert event["counts"] == {"new_labelled": 1600, "training_rows": 1400, "stored_rows": 1400}
    assert event["training"]["version"] == "2"
    assert event["status"] == "refused" and event["decision"]["challenger_version"] == "2"
    assert recorder.challenges == [("2", 200)]
    frame, kwargs = recorder.frames[0]
    assert kwargs["make_champion"] is False and kwargs["candidates"] == ["lightgbm"]
    assert store[EVENTS].docs[0]["status"] == "refused"

    # Within the cooldown, and after it with no new shots (the reference is now the shots
    # stored after the retrain, of which there are none): nothing.
    clock[0] = 5010.0
    assert loop.step() is None
    clock[0] = 6000.0
    assert loop.step() is None
    assert len(store[EVENTS].docs) == 1


def test_a_restarted_loop_remembers_the_last_retrain(store, tmp_path):
    recorder, clock = Recorder(), [5000.0]
    _loop(store, tmp_path, recorder, clock).step()
    again = _loop(store, tmp_path, recorder, clock, min_new_labelled=1)
    assert again.triggers.state.last_retrain_at == 5000.0
    assert again.triggers.state.last_labelled_at == pytest.approx(2799.5)
    assert again.step() is None  # no label arrived since


def test_a_request_file_retrains_once_for_its_reason(store, tmp_path):
    recorder, clock = Recorder(), [5000.0]
    loop = _loop(store, tmp_path, recorder, clock, drift_share=None, error_drift=False)
    assert loop.step() is None
    request_retrain(loop.settings, "new season")
    event = loop.step()
    assert event["reasons"] == [MANUAL] and event["request"] == "new season"
    assert loop.step() is None  # the request was used up


def test_a_failed_retrain_is_recorded_with_the_error(store, tmp_path):
    recorder, clock = Recorder(), [5000.0]

    def too_few(settings, frame, **kwargs):
        raise ValueError("mongodb:unit: 12 labelled shots is too few to train on")

    loop = _loop(store, tmp_path, recorder, clock)
    loop.train = too_few
    event = loop.step(manual=MANUAL)
    assert event["status"] == "failed" and "too few" in event["error"]
    assert np.isfinite(event["finished_at"])
