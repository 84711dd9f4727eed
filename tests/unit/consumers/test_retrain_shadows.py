"""The retrain loop and the judge of shadows: every poll's labels go to the judge, a challenge
waits while a shadow is judged, and a verdict is recorded on the retrain that trained it."""

from __future__ import annotations

from consumers.retrain_request import request_retrain
from models.drift import MANUAL
from parivision.store import RETRAIN_EVENTS, SHOTS
from tests.unit.consumers.retrain_fakes import (
    Recorder,
    _loop,
)


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
