"""kill -9 of the stream worker in the middle of a replay, as a crash would do it.

Real 2018-19 shots in game order at a fixed rate; the worker is killed (SIGKILL: no shutdown,
no last checkpoint, no last commit) a third of the way through and restarted three seconds
later.  What a user must find afterwards: every shot stored once with its outcome, every stored
feature equal to what batch training computes, no attempt released without an outcome that
was already in Kafka, and the online learners resumed from their checkpoint.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from pymongo import MongoClient

from models.data import load_shots
from models.features import build_features, feature_dict
from parivision.demo import start_process, stop_process, wait_for_group
from parivision.topics import ensure_topics
from producers.csv_source import CsvSource
from producers.pacing import make_pacer
from producers.replay import replay
from tests.integration.conftest import wait_for_progress, wait_until

# Known failing, so not yet in the suite (issue 9 is open): after kill -9, some outcomes of
# 6,000 are still not joined (458 before the successor stopped crashing on a head left on a
# released attempt; then 4; with redelivered outcomes refolded, runs gave 0, 0, 19, 17).  The
# tables have changelogs of their own, written apart from the consumer's offsets, so a kill
# between their writes can leave them disagreeing.  PARIVISION_FAULT_TESTS=1 runs it.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get("PARIVISION_FAULT_TESTS"),
        reason="known to lose a few outcomes after kill -9 (issue 9); PARIVISION_FAULT_TESTS=1",
    ),
]

SHOTS = 6000
RATE = 400.0  # shots per second: a 15 s replay
GIVEN_UP = "scored the attempts waiting on it without it"


def test_a_worker_killed_mid_replay_loses_nothing_and_gives_up_on_nothing(
    services, settings_factory, champion_version, games_csv, pipeline
):
    endpoints, _ = services
    # Learners checkpoint often, so the restarted worker has something recent to resume from.
    settings = settings_factory(
        online_learners="logreg", online_checkpoint_every=500, online_checkpoint_s=2.0
    )
    ensure_topics(settings)
    db = MongoClient(settings.mongodb())[settings.mongodb_database]
    logs = settings.resolved_home() / "logs"
    first_log, second_log = f"crash-1-{settings.app_id}.log", f"crash-2-{settings.app_id}.log"

    with pipeline(settings, stream=False):  # the sink, as a real process
        first = start_process(settings, endpoints, "stream", first_log)
        second = None
        try:
            wait_for_group(settings, settings.stream_group(), {"stream": first})
            stats: dict = {}
            sender = threading.Thread(
                target=lambda: stats.update(
                    vars(
                        replay(
                            settings,
                            CsvSource(games_csv),
                            pacer=make_pacer(rate=RATE),
                            limit=SHOTS,
                            show_progress=False,
                        )
                    )
                )
            )
            sender.start()

            def stored() -> int:
                return db.predictions.count_documents({})

            # A third of the way in, with learner checkpoints written: the crash.
            wait_until(lambda: stored() >= SHOTS // 3 or stored(), 120, "a third stored", 0.2)
            wait_until(
                lambda: "online learners saved" in (logs / first_log).read_text(),
                60,
                "a learner checkpoint",
            )
            os.kill(first.pid, signal.SIGKILL)
            first.wait(10)
            time.sleep(3)
            second = start_process(settings, endpoints, "stream", second_log)
            sender.join(120)
            assert stats.get("produced") == SHOTS

            wait_for_progress(
                lambda: db.predictions.count_documents({"outcome": {"$exists": True}}),
                SHOTS,
                "stored predictions with their outcome after the crash",
            )
        finally:
            for process in (first, second):
                if process is not None:
                    stop_process(process)

    # Every shot stored once, with its outcome.
    assert db.predictions.count_documents({}) == SHOTS
    assert len(db.predictions.distinct("shot_id")) == SHOTS
    # No attempt was given up on: every outcome was in Kafka, 2 s behind its attempt.
    second_text = (logs / second_log).read_text()
    assert GIVEN_UP not in second_text, [
        line for line in second_text.splitlines() if GIVEN_UP in line
    ][:5]
    # The learners picked up where the last checkpoint left them.
    assert "online learners restored from" in second_text
    # Every stored feature is the one batch training computes for the same shot.
    frame = load_shots(games_csv, limit=SHOTS)
    expected = build_features(frame)
    ids = [f"{g}-{e}" for g, e in zip(frame["game_id"], frame["game_event_id"], strict=True)]
    stored_features = {d["shot_id"]: d["features"] for d in db.shots.find({}, {"_id": 0})}
    different = [
        shot_id
        for shot_id, row in zip(ids, expected, strict=True)
        if stored_features.get(shot_id) != feature_dict(row)
    ]
    assert not different, f"{len(different)} shots' features differ from batch: {different[:5]}"
