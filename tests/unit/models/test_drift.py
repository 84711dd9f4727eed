"""ADWIN on the champion's errors and the retrain triggers: each trigger fires when it should and
only then.  Evidently's data drift is tested in test_drift_report.py."""

from __future__ import annotations

import numpy as np
import pytest

from models.drift import (
    COUNT,
    DATA_DRIFT,
    ERROR_DRIFT,
    MANUAL,
    SCHEDULE,
    ErrorDrift,
    TriggerConfig,
    Triggers,
    TriggerState,
    shot_error,
)


def _errors(n: int, seed: int, *, make_rate_shift: float = 0.0) -> list[float]:
    """Per-shot errors of a calibrated model; ``make_rate_shift`` moves the real make rate away
    from what the model predicts (a drift the model does not know about)."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.25, 0.65, n)
    made = rng.random(n) < np.clip(p + make_rate_shift, 0, 1)
    return [shot_error(int(y), float(q)) for y, q in zip(made, p, strict=True)]


# ---- ADWIN on the champion's errors


def test_shot_error_is_distance_from_the_outcome():
    assert shot_error(1, 0.7) == pytest.approx(0.3)
    assert shot_error(0, 0.7) == pytest.approx(0.7)


@pytest.mark.parametrize("seed", range(5))
def test_adwin_stays_quiet_on_a_stationary_error_stream(seed):
    detector = ErrorDrift()
    assert detector.update(_errors(6000, seed)) is False
    assert detector.state()["detections"] == 0
    assert detector.state()["window"] == 6000


@pytest.mark.parametrize("seed", range(5))
def test_adwin_fires_soon_after_the_make_rate_shifts(seed):
    detector = ErrorDrift()
    assert detector.update(_errors(3000, seed)) is False
    assert detector.update(_errors(3000, seed + 100, make_rate_shift=-0.25)) is True
    state = detector.state()
    # |outcome - p| moves little for a make-rate shift near p = 0.5 (0.47 -> 0.44 here), so
    # ADWIN needs a thousand or two shots to be sure; the window then starts after the change.
    assert 3000 < state["last_detected_at"] < 5000
    assert state["window"] < 3000
    assert state["mean_error"] < state["mean_error_before_last_drift"]


# ---- the triggers


def _triggers(retrains: int = 0, **config) -> Triggers:
    defaults = {
        "min_new_labelled": 0,
        "every_s": None,
        "drift_share": None,
        "error_drift": False,
        "cooldown_s": 0.0,
    }
    state = TriggerState(last_retrain_at=1000.0, retrains=retrains)
    return Triggers(TriggerConfig(**(defaults | config)), state)


def test_count_trigger_fires_at_the_threshold_and_restarts_after_a_retrain():
    triggers = _triggers(min_new_labelled=500)
    assert triggers.check(1001, 499, [], None) == []
    assert triggers.check(1002, 500, [], None) == [COUNT]
    triggers.retrained(1002, labelled_until=1001.5)
    assert triggers.state.last_labelled_at == 1001.5 and triggers.state.retrains == 1


def test_schedule_trigger_fires_every_period():
    triggers = _triggers(every_s=60)
    assert triggers.check(1059, 0, [], None) == []
    assert triggers.check(1060, 0, [], None) == [SCHEDULE]
    triggers.retrained(1060, 0)
    assert triggers.check(1100, 0, [], None) == []
    assert triggers.check(1121, 0, [], None) == [SCHEDULE]


def test_error_drift_trigger_fires_on_a_shift_and_waits_out_the_cooldown():
    triggers = _triggers(retrains=1, error_drift=True, cooldown_s=300)
    assert triggers.check(1100, 0, _errors(3000, 1), None) == []
    # Drift found during the cooldown is kept until the cooldown ends.
    assert triggers.check(1200, 0, _errors(2500, 2, make_rate_shift=-0.25), None) == []
    assert triggers.check(1301, 0, [], None) == [ERROR_DRIFT]
    triggers.retrained(1301, 0)
    assert triggers.check(1700, 0, [], None) == []


def test_no_cooldown_before_the_first_retrain():
    triggers = _triggers(drift_share=0.25, cooldown_s=300)
    assert triggers.check(1001, 0, [], True) == [DATA_DRIFT]
    triggers.retrained(1001, 0)
    assert triggers.check(1002, 0, [], True) == []
    assert triggers.check(1301, 0, [], True) == [DATA_DRIFT]


def test_data_drift_trigger_follows_evidently_s_dataset_drift_verdict():
    triggers = _triggers(drift_share=0.25)
    assert triggers.check(1001, 0, [], None) == []  # not measured yet
    assert triggers.check(1001, 0, [], False) == []
    assert triggers.check(1001, 0, [], True) == [DATA_DRIFT]


def test_manual_comes_first_and_several_reasons_are_all_reported():
    triggers = _triggers(min_new_labelled=10, every_s=10, drift_share=0.25)
    assert triggers.check(2000, 10, [], True, manual=True) == [MANUAL, COUNT, SCHEDULE, DATA_DRIFT]


def test_a_threshold_of_zero_turns_a_trigger_off():
    triggers = _triggers(min_new_labelled=0, every_s=0, drift_share=0)
    assert triggers.check(10**9, 10**6, [], True) == []


def test_docstring_examples():
    import doctest

    import models.drift

    result = doctest.testmod(models.drift, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
