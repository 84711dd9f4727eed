"""A request file asks a running retrain loop to retrain once, for its reason."""

from __future__ import annotations

from consumers.retrain_request import request_retrain
from models.drift import MANUAL
from tests.unit.consumers.retrain_fakes import (
    Recorder,
    _loop,
)


def test_a_request_file_retrains_once_for_its_reason(store, tmp_path):
    recorder, clock = Recorder(), [5000.0]
    loop = _loop(store, tmp_path, recorder, clock, drift_share=None, error_drift=False)
    assert loop.step() is None
    request_retrain(loop.settings, "new season")
    event = loop.step()
    assert event["reasons"] == [MANUAL] and event["request"] == "new season"
    assert loop.step() is None  # the request was used up
