"""A retrain on an in-memory store: a failed one is recorded with its error, and a window that
does not cover the league makes the challenge wait, once, saying why."""

from __future__ import annotations

import numpy as np

from consumers.retrain_request import request_retrain
from models.drift import MANUAL
from parivision.store import RETRAIN_EVENTS
from tests.unit.consumers.retrain_fakes import (
    Database,
    Recorder,
    _loop,
    _metric,
    _store,
)


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
