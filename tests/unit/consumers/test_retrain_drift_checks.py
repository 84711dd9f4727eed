"""The retrain loop's drift checks on an in-memory store: against the right reference, one a
window of new stored shots and one when they stop, reused while nothing changed."""

from __future__ import annotations

from models.drift import DATA_DRIFT
from models.drift_report import reports_folder, shifted_shots
from models.reference import CHAMPION
from tests.unit.consumers.retrain_fakes import (
    Database,
    Recorder,
    _champion,
    _loop,
    _metric,
    _store,
)


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
