"""Evidently's drift and quality report on real NBA shots: shots taken 8 ft further out and made
less often drift (the distance features flagged, the dataset drifted); later shots of the same
season do not; the quality numbers are the champion's; the reports are kept as promised; the
training reference goes to MLflow and comes back; and the stream worker never loads Evidently."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.drift_report import (
    DRIFT_SHARE,
    LATEST_HTML,
    LATEST_JSON,
    evaluate,
    feature_frame,
    latest_summary,
    save_report,
    shifted_shots,
)
from models.features import FEATURE_NAMES, build_features
from models.reference import CHAMPION, Reference, reference_sample

# Real shots of March 2019: the reference window, the window after it, and two later ones.
REFERENCE, NEXT = (205_000, 207_000), (207_000, 209_000)
LATER = [(215_000, 217_000), (225_000, 227_000)]
DISTANCES = {"x", "y", "distance_m", "coord_distance_ft", "zone_range"}


def recent_frame(shots: pd.DataFrame, p: np.ndarray | None = None) -> pd.DataFrame:
    """Features of ``shots`` as the store holds them, with outcomes and a probability."""
    frame = pd.DataFrame(build_features(shots), columns=list(FEATURE_NAMES))
    frame["outcome"] = shots["made"].to_numpy(dtype=np.float64)
    frame["p_champion"] = np.full(len(frame), 0.45) if p is None else p
    return frame


@pytest.fixture(scope="module")
def reference(shots_frame) -> Reference:
    shots = shots_frame.iloc[slice(*REFERENCE)]
    sample = reference_sample(build_features(shots), shots["made"].to_numpy())
    return Reference(sample, CHAMPION, "the reference window", version="1")


@pytest.fixture(scope="module")
def shifted(shots_frame, reference):
    shots = shifted_shots(shots_frame.iloc[slice(*NEXT)])
    return evaluate(recent_frame(shots), reference, champion_version="1", at=1.7e9)


def test_shifted_shots_are_further_out_and_made_less(shots_frame):
    shots = shots_frame.iloc[slice(*NEXT)]
    shifted = shifted_shots(shots)
    assert (shifted["shot_distance"] - shots["shot_distance"]).mean() == pytest.approx(8, abs=1)
    assert shifted["made"].mean() < 0.7 * shots["made"].mean()
    assert shifted["x"].between(-250, 250).all() and shifted["y"].between(-52, 940).all()
    assert (shifted["shot_type"] == "3PT Field Goal").mean() > (
        shots["shot_type"] == "3PT Field Goal"
    ).mean()


def test_evidently_flags_the_distance_features_and_dataset_drift(shifted):
    summary, html = shifted
    assert summary.dataset_drift is True
    assert summary.drift_share >= DRIFT_SHARE
    assert set(summary.drifted) >= DISTANCES
    # Where and how well shots are taken moved; what kind of shot and when did not.
    assert not {"period", "seconds_left_in_period", "action_dunk", "action_jump"} & set(
        summary.drifted
    )
    distance = summary.features["distance_m"]
    assert distance.drifted and distance.score >= distance.threshold
    assert distance.method.startswith("Wasserstein")  # Evidently's own choice for 2,000 rows
    assert summary.recent_rows == 2000 and summary.reference_rows == 2000
    assert len(summary.features) == len(FEATURE_NAMES) and summary.untested == []
    assert "Dataset Drift is detected" in html and "the reference window" in html


@pytest.mark.parametrize("window", LATER)
def test_later_shots_of_the_same_season_are_not_a_dataset_drift(shots_frame, reference, window):
    summary, _ = evaluate(recent_frame(shots_frame.iloc[slice(*window)]), reference)
    assert summary.dataset_drift is False
    assert summary.drift_share < DRIFT_SHARE / 2
    assert not DISTANCES & set(summary.drifted)


def test_quality_is_the_champion_s_on_the_labelled_shots(shots_frame, reference):
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

    shots = shots_frame.iloc[slice(*NEXT)]
    # An informative, imperfect champion: higher for the made shots, with noise.
    noise = np.random.default_rng(1).random(2000)
    p = np.clip(0.3 + 0.3 * shots["made"].to_numpy() + 0.2 * noise, 0.01, 0.99)
    recent = recent_frame(shots, p)
    recent.loc[recent.index[-300:], "outcome"] = np.nan  # not labelled yet
    summary, html = evaluate(recent, reference)
    y, q = recent["outcome"].iloc[:-300].astype(int), p[:-300]
    assert summary.labelled_rows == 1700
    assert summary.quality["log_loss"] == pytest.approx(log_loss(y, q), rel=1e-6)
    assert summary.quality["roc_auc"] == pytest.approx(roc_auc_score(y, q), rel=1e-6)
    assert summary.quality["accuracy"] == pytest.approx(accuracy_score(y, q >= 0.5), rel=1e-6)
    assert "Champion quality on the 1,700 recent labelled shots" in html


def test_too_few_labels_leave_the_quality_out_and_say_why(shots_frame, reference):
    recent = recent_frame(shots_frame.iloc[slice(*NEXT)])
    recent.loc[recent.index[50:], "outcome"] = np.nan
    summary, html = evaluate(recent, reference)
    assert summary.quality == {} and summary.labelled_rows == 50
    assert "not measured" in html


def test_a_feature_the_store_never_had_is_left_untested(shots_frame, reference):
    rows = [
        {k: v for k, v in zip(FEATURE_NAMES, row, strict=True) if k != "player_rate"}
        for row in build_features(shots_frame.iloc[slice(*NEXT)])
    ]
    summary, _ = evaluate(feature_frame(rows), reference)
    assert summary.untested == ["player_rate"] and "player_rate" not in summary.features
    assert summary.labelled_rows == 0 and summary.quality == {}


def test_reports_are_saved_with_the_latest_and_only_the_last_few_kept(shifted, tmp_path):
    summary, html = shifted
    paths = []
    for i in range(4):
        summary.at = 1.7e9 + i
        paths.append(save_report(tmp_path, summary, html, keep=3))
    kept = sorted(p.name for p in tmp_path.glob("drift-*.html"))
    assert kept == sorted(p.name for p in paths[1:])
    assert paths[-1].name == "drift-20231114T221323.000Z.html"
    assert (tmp_path / LATEST_HTML).read_text() == html
    latest = latest_summary(tmp_path)
    assert latest == json.loads((tmp_path / LATEST_JSON).read_text())
    assert latest["report"] == str(paths[-1]) and latest["dataset_drift"] is True
    assert latest["features"]["distance_m"]["drifted"] is True
    assert set(latest["quality"]) >= {"accuracy", "roc_auc", "log_loss"}
    assert latest_summary(tmp_path / "none") is None
    assert not list(tmp_path.glob(".*partial"))


def test_the_training_reference_goes_to_mlflow_and_comes_back(registry_settings, shots_frame):
    import mlflow
    from mlflow import MlflowClient

    from models.reference import champion_reference, log_reference

    settings = registry_settings(model_name="reference-test")
    shots = shots_frame.iloc[slice(*REFERENCE)]
    matrix = build_features(shots)
    client = MlflowClient(tracking_uri=settings.mlflow(), registry_uri=settings.mlflow())
    client.create_registered_model(settings.registered_model())
    for logged in (False, True):
        with mlflow.start_run() as run:
            if logged:
                assert log_reference(matrix, shots["made"].to_numpy(), rows=500) == 500
        client.create_model_version(
            settings.registered_model(), run.info.artifact_uri, run.info.run_id
        )
    assert champion_reference(settings, "1") is None  # trained before references were logged
    found = champion_reference(settings, "2")
    assert found.kind == CHAMPION and found.version == "2"
    assert found.description == "champion v2's training sample (500 of 2,000 rows)"
    assert list(found.frame.columns) == [*FEATURE_NAMES, "made"] and len(found.frame) == 500
    expected = reference_sample(matrix, shots["made"].to_numpy(), rows=500)
    np.testing.assert_array_equal(found.frame.to_numpy(), expected.to_numpy())


def test_docstring_examples():
    import doctest

    import models.drift_report
    import models.reference

    for module in (models.drift_report, models.reference):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.attempted > 0 and result.failed == 0, module.__name__


@pytest.mark.parametrize(
    "module", ["streams.app", "consumers.retrain_trigger", "consumers.api.app", "models.train"]
)
def test_evidently_is_not_loaded_by_importing(module):
    # The stream worker never runs Evidently; the others load it only when a check runs.
    code = f"import sys, {module}; print('evidently' in sys.modules)"
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"
