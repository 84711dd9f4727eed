"""The retrain loop on an in-memory store: a drift starts a retrain recorded with its reasons,
counts, drift numbers, version and decision, exported as metrics; a restarted loop remembers the
last retrain."""

from __future__ import annotations

import pytest

from models.drift import DATA_DRIFT, ERROR_DRIFT
from models.drift_report import LATEST_HTML, latest_summary, reports_folder
from models.reference import STORED
from parivision.store import RETRAIN_EVENTS, SHOTS
from tests.unit.consumers.retrain_fakes import (
    Recorder,
    _loop,
    _metric,
)


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


def test_a_restarted_loop_remembers_the_last_retrain(store, tmp_path):
    recorder, clock = Recorder(), [5000.0]
    _loop(store, tmp_path, recorder, clock).step()
    again = _loop(store, tmp_path, recorder, clock, min_new_labelled=1)
    assert again.triggers.state.last_retrain_at == 5000.0
    assert again.triggers.state.last_labelled_at == pytest.approx(2799.75)
    assert again.step() is None  # no label arrived since
