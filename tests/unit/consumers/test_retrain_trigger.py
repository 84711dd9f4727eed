"""The retrain loop on an in-memory store: it reads the right shots, runs Evidently's report
against the right reference, records every retrain with its reasons, counts, drift numbers,
version and decision, exports them as metrics, and answers a manual request."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
import pytest

from consumers.retrain_trigger import (
    RetrainLoop,
    errors_of,
    labelled_frame,
    recent_shots,
    request_retrain,
)
from models.drift import DATA_DRIFT, ERROR_DRIFT, MANUAL, TriggerConfig
from models.drift_report import LATEST_HTML, latest_summary, reports_folder, shifted_shots
from models.features import FEATURE_NAMES, build_features, feature_dict
from models.reference import CHAMPION, STORED, Reference, reference_sample
from parivision.settings import Settings
from parivision.store import RETRAIN_EVENTS, SHOTS

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


@pytest.fixture
def store(shots_frame):
    """800 real shots, then 800 shot 8 ft further out and made less, which the champion
    still thinks are easy (its errors grow)."""
    db = Database()
    _store(db, shots_frame.iloc[205_000:205_800], start=1000.0, p=0.45)
    _store(db, shifted_shots(shots_frame.iloc[206_000:206_800]), start=2000.0, p=0.7)
    return db


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


def test_labelled_frame_leaves_out_the_holdout_and_is_in_game_time_order(store):
    frame = labelled_frame(store, holdout=200)
    assert len(frame) == 1400
    assert frame["game_date"].is_monotonic_increasing
    assert set(frame["made"]) == {0, 1}


def test_errors_follow_the_predictions():
    assert errors_of([{"outcome": 1, "p_champion": 0.25}, {"outcome": 0}]) == [0.75]


def test_recent_shots_are_the_last_window_with_outcomes_and_probabilities(store, shots_frame):
    recent = recent_shots(store, 300)
    assert list(recent.columns) == [*FEATURE_NAMES, "outcome", "p_champion"]
    assert len(recent) == 300 and (recent["p_champion"] == 0.7).all()
    expected = build_features(shifted_shots(shots_frame.iloc[206_000:206_800]))[-300:]
    assert np.allclose(recent[list(FEATURE_NAMES)].to_numpy(), expected, equal_nan=True)
    store[SHOTS].docs[-1].pop("outcome")  # the last shot's outcome is not in yet
    assert recent_shots(store, 300)["outcome"].isna().sum() == 1
    oldest = recent_shots(store, 300, oldest=True)
    assert (oldest["p_champion"] == 0.45).all()


def test_drift_starts_a_retrain_that_is_recorded_with_its_numbers(store, tmp_path):
    recorder, clock = Recorder(), [5000.0]
    loop = _loop(store, tmp_path, recorder, clock)
    event = loop.step()
    assert event is not None
    assert event["reasons"] == [ERROR_DRIFT, DATA_DRIFT]
    assert event["reason"] == "error_drift,data_drift"
    data = event["drift"]["data"]
    # No champion to take a training sample from: the first stored window is the reference.
    assert data["reference"] == STORED
    assert data["reference_description"] == "the first 300 shots stored (no champion yet)"
    assert data["dataset_drift"] is True and data["drift_share"] >= 0.25
    assert {"distance_m", "coord_distance_ft", "zone_range"} <= set(data["drifted"])
    assert data["quality"]["log_loss"] > 0.69  # p = 0.7 on shots mostly missed
    assert data["report"] == str(next(reports_folder(tmp_path).glob("drift-*.html")))
    assert event["drift"]["adwin"]["detections"] >= 1
    # Trained on the store (asked for here) without the 200 most recent labels it is judged on.
    counts = event["counts"]
    assert (counts["new_labelled"], counts["training_rows"]) == (1600, 1400)
    assert counts["sources"] == {
        "mongodb:unit": 1600,
        "combined": 1600,
        "left_out": 200,
        "duplicate_rows": 0,
    }
    newest = sorted(store[SHOTS].docs, key=lambda d: d["labelled_at"])[-200:]
    frame, kwargs = recorder.frames[0]
    assert not set(frame["shot_id"]) & {d["shot_id"] for d in newest}
    assert event["window"]["shots"] == 200
    assert event["training"]["version"] == "2"
    assert event["status"] == "refused" and event["decision"]["challenger_version"] == "2"
    assert recorder.challenges == [("2", 200)]
    frame, kwargs = recorder.frames[0]
    assert kwargs["make_champion"] is False and kwargs["candidates"] == ["lightgbm"]
    assert store[RETRAIN_EVENTS].docs[0]["status"] == "refused"
    assert recorder.tags == [
        (
            "2",
            {
                "retrain.reason": "error_drift,data_drift",
                "retrain.drift_share": f"{data['drift_share']:.4f}",
                "retrain.drift_report": data["report"],
            },
        )
    ]
    assert (reports_folder(tmp_path) / LATEST_HTML).is_file()
    assert latest_summary(reports_folder(tmp_path))["report"] == data["report"]

    # What the retrainer exports for Prometheus.
    assert _metric(loop, "parivision_drift_detected") == 1.0
    assert _metric(loop, "parivision_drift_share") == pytest.approx(data["drift_share"], abs=1e-4)
    assert _metric(loop, "parivision_drifted_features") == len(data["drifted"])
    score = data["features"]["distance_m"]["score"]
    assert _metric(loop, 'parivision_feature_drift_score{feature="distance_m"}') == pytest.approx(
        score, rel=1e-5
    )
    log_loss = data["quality"]["log_loss"]
    assert _metric(loop, 'parivision_recent_quality{metric="log_loss"}') == pytest.approx(
        log_loss, rel=1e-5
    )
    assert _metric(loop, 'parivision_retrains_total{trigger="data_drift"}') == 1.0
    assert _metric(loop, 'parivision_retrains_total{trigger="error_drift"}') == 1.0
    assert _metric(loop, 'parivision_promotion_decisions_total{outcome="kept"}') == 1.0
    assert _metric(loop, "parivision_drift_checks_total") == 1.0
    assert _metric(loop, "parivision_labelled_since_retrain") == 1600
    assert _metric(loop, "parivision_error_drift_detected") == 1.0

    # Within the cooldown, and after it with no new shots (a retrain answers the drift seen
    # so far; only shots stored after it count now, and there are none): nothing.
    clock[0] = 5010.0
    assert loop.step() is None
    clock[0] = 6000.0
    assert loop.step() is None
    assert len(store[RETRAIN_EVENTS].docs) == 1
    assert _metric(loop, "parivision_error_drift_detected") == 0.0


def test_the_champion_s_training_sample_is_the_reference_and_a_new_drift_fires_again(
    store, tmp_path, shots_frame
):
    recorder, clock = Recorder(), [5000.0]
    champion = _champion(shots_frame)
    loop = _loop(store, tmp_path, recorder, clock, champion, window=1000, error_drift=False)
    first = loop.step()
    assert first["reasons"] == [DATA_DRIFT]
    data = first["drift"]["data"]
    assert data["reference"] == CHAMPION and data["champion_version"] == "1"
    assert data["reference_description"] == "champion v1's training sample"
    assert data["reference_rows"] == 2000 and data["recent_rows"] == 1000

    # A poll that finds nothing new reuses the last check rather than writing it again.
    clock[0] = 5030.0
    assert loop.step() is None
    assert _metric(loop, "parivision_drift_checks_total") == 1.0

    # After the cooldown, a window of drifted shots stored since the retrain: drift again.
    _store(store, shifted_shots(shots_frame.iloc[207_000:208_000], seed=1), start=5100, p=0.7)
    clock[0] = 6200.0
    second = loop.step()
    assert second["reasons"] == [DATA_DRIFT] and second["drift"]["data"]["recent_rows"] == 1000
    assert _metric(loop, "parivision_drift_checks_total") == 2.0
    assert _metric(loop, 'parivision_retrains_total{trigger="data_drift"}') == 2.0


def _real_shots_loop(shots_frame, tmp_path):
    """2,000 real shots stored, a loop with a window of 1,000 against the champion's sample."""
    db = Database()
    _store(db, shots_frame.iloc[205_000:207_000], start=1000.0, p=0.45)
    clock = [5000.0]
    champion = _champion(shots_frame)
    loop = _loop(db, tmp_path, Recorder(), clock, champion, window=1000, error_drift=False)
    return db, loop, clock


def test_real_shots_against_the_champion_s_sample_start_no_retrain(shots_frame, tmp_path):
    _, loop, _ = _real_shots_loop(shots_frame, tmp_path)
    assert loop.step() is None
    assert loop.drift.dataset_drift is False and loop.drift.recent_rows == 1000
    assert not {"x", "y", "distance_m", "zone_range"} & set(loop.drift.drifted)
    assert _metric(loop, "parivision_drift_detected") == 0.0


def test_a_drift_report_every_window_of_new_shots_and_one_when_they_stop(shots_frame, tmp_path):
    # A check reads the window from the store: a poll finding fewer new shots than the window
    # keeps the last one; the window's worth makes a new one; a poll finding nothing new after
    # some arrived reports on them (the stream stopped: the tail is not left unchecked).
    db, loop, clock = _real_shots_loop(shots_frame, tmp_path)
    checks = lambda: _metric(loop, "parivision_drift_checks_total")  # noqa: E731

    def poll():
        clock[0] += 30.0  # reports are named by the time of their check
        loop.step()

    poll()
    first = loop.drift
    assert checks() == 1.0

    _store(db, shots_frame.iloc[207_000:207_600], start=3000.0, p=0.45)
    poll()
    assert checks() == 1.0 and loop.drift is first
    _store(db, shots_frame.iloc[207_600:208_000], start=3600.0, p=0.45)
    poll()
    assert checks() == 2.0 and loop.drift is not first
    # Two checks kept, their reports left undrawn until asked for (models.drift_checks).
    assert len(list(reports_folder(tmp_path).glob("drift-*.json"))) == 2
    assert not list(reports_folder(tmp_path).glob("drift-*.html"))

    _store(db, shots_frame.iloc[208_000:208_300], start=4000.0, p=0.45)
    poll()
    assert checks() == 2.0
    poll()  # nothing new since the last poll: the last 300 shots get their report
    assert checks() == 3.0 and loop.drift.recent_rows == 1000
    poll()
    assert checks() == 3.0


def test_drift_every_zero_reports_at_every_poll_with_new_shots(shots_frame, tmp_path):
    db, loop, _ = _real_shots_loop(shots_frame, tmp_path)
    loop.drift_every = 0
    loop.step()
    _store(db, shots_frame.iloc[207_000:207_100], start=3000.0, p=0.45)
    loop.step()
    assert _metric(loop, "parivision_drift_checks_total") == 2.0


def test_a_restarted_loop_remembers_the_last_retrain(store, tmp_path):
    recorder, clock = Recorder(), [5000.0]
    _loop(store, tmp_path, recorder, clock).step()
    again = _loop(store, tmp_path, recorder, clock, min_new_labelled=1)
    assert again.triggers.state.last_retrain_at == 5000.0
    assert again.triggers.state.last_labelled_at == pytest.approx(2799.75)
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
    assert _metric(loop, 'parivision_promotion_decisions_total{outcome="failed"}') == 1.0
    assert _metric(loop, 'parivision_retrains_total{trigger="manual"}') == 1.0
    assert recorder.tags == []  # nothing was registered to tag


def test_a_window_of_one_player_makes_the_challenge_wait_once_and_say_why(shots_frame, tmp_path):
    # The first seasons of the file are Kobe Bryant's alone: a replay of them is one player on
    # one team, and a challenge judged on them would say nothing about the league.
    db = Database()
    _store(db, shots_frame.iloc[:1600], start=1000.0, p=0.45)
    recorder, clock = Recorder(), [5000.0]
    coverage = {"promotion_min_players": 30, "promotion_min_teams": 6, "promotion_min_games": 3}
    loop = _loop(
        db, tmp_path, recorder, clock, settings=coverage, drift_share=None, error_drift=False
    )
    event = loop.step(manual=MANUAL)
    assert event["status"] == "waiting"
    assert event["waiting"].startswith(
        "the recent window does not cover the league: 1 player (at least 30), 1 team (at least 6)"
    )
    assert event["window"]["players"] == 1 and event["window"]["shots"] == 200
    assert recorder.frames == [] and recorder.challenges == []  # nothing trained
    assert _metric(loop, 'parivision_promotion_decisions_total{outcome="waiting"}') == 1.0
    # The trigger stays pending: the next poll looks again, and the same reason is one document.
    clock[0] += 30.0
    _store(db, shots_frame.iloc[1600:1700], start=3000.0, p=0.45)
    request_retrain(loop.settings, MANUAL)
    assert loop.step()["status"] == "waiting"
    waiting = [e for e in db[RETRAIN_EVENTS].docs if e["status"] == "waiting"]
    assert len(waiting) == 1 and waiting[0]["checked_at"] == clock[0]
    # A waiting challenge is not a retrain: a restarted loop does not count it as one.
    again = _loop(db, tmp_path, recorder, clock)
    assert again.triggers.state.retrains == 0


def test_every_poll_hands_its_labels_to_the_judge_of_shadows(store, tmp_path):
    recorder, clock = Recorder(), [5000.0]
    store[SHOTS].docs[-1] |= {"shadow_version": "3", "p_shadow": 0.61, "model_version": "2"}
    loop = _loop(store, tmp_path, recorder, clock, drift_share=None, error_drift=False)
    loop.step()
    (first,) = loop.judge.polls
    assert len(first) == 1600
    assert {k: first[-1][k] for k in ("shadow_version", "p_shadow", "model_version")} == {
        "shadow_version": "3",
        "p_shadow": 0.61,
        "model_version": "2",
    }
    clock[0] += 30.0
    loop.step()
    assert loop.judge.polls[-1] == []  # nothing new was labelled


def test_a_challenge_waits_while_a_shadow_is_judged(store, tmp_path):
    from models.promotion.shadow import CHALLENGER, Shadow

    recorder, clock = Recorder(), [5000.0]
    loop = _loop(store, tmp_path, recorder, clock, drift_share=None, error_drift=False)
    loop.judge.shadow = Shadow("5", CHALLENGER, "4", 4000.0, 1000)
    event = loop.step(manual=MANUAL)
    assert event["status"] == "waiting" and recorder.frames == []
    assert event["waiting"] == (
        "v5 is in shadow (a challenger, 1,000 labelled shots): the next challenge waits for its "
        "verdict"
    )
    loop.judge.shadow = None  # its verdict is in: the next request retrains
    request_retrain(loop.settings, MANUAL)
    assert loop.step()["status"] == "refused" and len(recorder.frames) == 1


def test_a_shadow_s_verdict_is_recorded_on_the_retrain_that_trained_it(store, tmp_path):
    """The loop's challenger v5 (trained by retrain A) is promoted by its shadow: A records
    ``shadow: promoted`` (the promotion's decision names the watch it starts, v4 watching v5,
    which must not be taken for the judged shadow); the watch then confirms v5: A records
    ``watch: confirmed``.  Retrain B (v6) is untouched."""
    from models.promotion.events import Decision
    from models.promotion.shadow import CHALLENGER, CONFIRM, PROMOTE, WATCH, Shadow

    loop = _loop(store, tmp_path, Recorder(), [5000.0], drift_share=None, error_drift=False)
    events = store[RETRAIN_EVENTS]
    events.insert_one({"at": 1.0, "training": {"version": "5"}, "status": "shadowing"})
    events.insert_one({"at": 2.0, "training": {"version": "6"}, "status": "refused"})
    judged = Shadow("5", CHALLENGER, "4", 4000.0, 1000)
    watch = Shadow("4", WATCH, "5", 4100.0, 1000)
    promoted = Decision("promoted", "m", "5", "4", None, "r1")
    promoted.shadow = watch.describe()
    loop._judged(PROMOTE, promoted, judged.describe())
    a, b = events.docs
    assert a["shadow"]["decision"] == "promoted" and "watch" not in a
    assert "shadow" not in b and "watch" not in b

    confirmed = Decision("confirmed", "m", "5", "4", None, "r2")
    loop._judged(CONFIRM, confirmed, watch.describe())
    a, b = events.docs
    assert (a["shadow"]["decision"], a["watch"]["decision"]) == ("promoted", "confirmed")
    assert "shadow" not in b and "watch" not in b
