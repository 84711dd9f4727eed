import numpy as np
import pandas as pd
import pytest

from models.features import FEATURE_NAMES, FEATURE_SET, build_features
from models.train import PLOT_FILES, data_window, time_split


@pytest.mark.parametrize("share", [0.05, 0.15, 0.3, 0.5])
def test_time_split_never_trains_on_a_date_later_than_it_validates_on(shots_frame, share):
    train, valid = time_split(shots_frame, share)
    assert len(train) + len(valid) == len(shots_frame)
    # Whole dates: no date (so no game) is on both sides.
    assert train["game_date"].max() < valid["game_date"].min()
    assert abs(len(valid) / len(shots_frame) - share) < share / 2


def test_time_split_sorts_a_shuffled_frame_first(recent_shots):
    shuffled = recent_shots.sample(frac=1.0, random_state=1)
    train, valid = time_split(shuffled, 0.2)
    assert train["game_date"].max() < valid["game_date"].min()


def test_time_split_with_one_date_cuts_between_games():
    frame = pd.DataFrame(
        {"game_date": 20190101, "game_id": np.repeat([1, 2, 3, 4, 5], 20), "made": 0}
    )
    train, valid = time_split(frame, 0.2)
    assert set(train["game_id"]).isdisjoint(valid["game_id"]) and len(valid) == 20


def test_time_split_refuses_a_share_outside_zero_to_one(recent_shots):
    with pytest.raises(ValueError, match="between 0 and 1"):
        time_split(recent_shots, 1.0)


def test_data_window_reports_rows_and_first_and_last_dates(recent_shots):
    train, valid = time_split(recent_shots, 0.25)
    window = data_window(train, valid)
    assert window["train_rows"] == len(train) and window["valid_rows"] == len(valid)
    assert window["train_from"] <= window["train_to"] < window["valid_from"] <= window["valid_to"]


@pytest.fixture(scope="module")
def trained(recent_shots, tmp_path_factory):
    """All four candidates trained on 20,000 real shots into a throwaway MLflow store, once."""
    from infra.mlflow_store import configure_mlflow
    from models.train import train_and_register
    from parivision.settings import Settings

    tmp = tmp_path_factory.mktemp("mlflow")
    settings = Settings(home=tmp / "home", mlflow_tracking_uri=f"sqlite:///{tmp}/mlflow.db")
    configure_mlflow(settings)
    frame = recent_shots.iloc[-20_000:].reset_index(drop=True)
    result = train_and_register(settings, frame, data_name="recent.csv", validation_share=0.25)
    return settings, frame, result


def test_the_best_candidate_by_validation_log_loss_is_registered_as_champion(trained):
    settings, _, result = trained
    from models import registry

    losses = {r.name: r.metrics["log_loss"] for r in result.candidates}
    assert set(losses) == {"logreg", "random_forest", "hist_gb", "lightgbm"}
    assert result.candidate == min(losses, key=losses.get)
    assert result.metrics["log_loss"] < result.metrics["base_rate_log_loss"]
    # The first version in an empty registry becomes champion.
    assert result.champion and registry.champion_version(settings) == result.version


def test_registered_version_carries_tags_metrics_and_three_pictures(trained):
    from mlflow import MlflowClient

    settings, _, result = trained
    client = MlflowClient(tracking_uri=settings.mlflow(), registry_uri=settings.mlflow())
    version = client.get_model_version(settings.registered_model(), result.version)
    assert version.tags["candidate"] == result.candidate
    assert version.tags["feature_set"] == FEATURE_SET
    assert float(version.tags["log_loss"]) == pytest.approx(result.metrics["log_loss"], abs=1e-6)
    run = client.get_run(version.run_id)
    assert run.data.tags["mlflow.parentRunId"] == result.parent_run_id
    for name in ("log_loss", "roc_auc", "brier", "accuracy", "f1"):
        assert run.data.metrics[name] == pytest.approx(result.metrics[name])
    for key in ("train_from", "train_to", "valid_from", "valid_to", "train_rows", "valid_rows"):
        assert run.data.params[key] == str(result.window[key])
    pictures = {a.path: a.file_size for a in client.list_artifacts(run.info.run_id, "plots")}
    assert set(pictures) == {f"plots/{name}" for name in PLOT_FILES}
    assert all(size > 1000 for size in pictures.values())


def test_every_candidate_has_its_own_run_with_pictures(trained):
    from mlflow import MlflowClient

    settings, _, result = trained
    client = MlflowClient(tracking_uri=settings.mlflow())
    for candidate in result.candidates:
        run = client.get_run(candidate.run_id)
        assert run.data.tags["candidate"] == candidate.name
        assert "log_loss" in run.data.metrics
        assert len(client.list_artifacts(candidate.run_id, "plots")) == 3


def test_registered_version_loads_with_the_stream_contract(trained):
    from models import registry

    settings, frame, result = trained
    champion = registry.load_version(settings, result.version)
    x = build_features(frame.iloc[-300:])
    p = champion.predict(x)
    assert champion.model.feature_name() == list(FEATURE_NAMES)
    winner = next(r for r in result.candidates if r.name == result.candidate)
    np.testing.assert_allclose(p, winner.model.predict(x), rtol=1e-9)


def test_a_second_training_stays_challenger_unless_told(trained):
    from models import registry
    from models.train import train_and_register

    settings, frame, first = trained
    second = train_and_register(
        settings, frame, data_name="again.csv", validation_share=0.25, candidates=["logreg"]
    )
    assert not second.champion and registry.champion_version(settings) == first.version
    third = train_and_register(
        settings, frame, data_name="again.csv", candidates=["lightgbm"], make_champion=True
    )
    assert third.champion and registry.champion_version(settings) == third.version


def test_too_few_shots_or_an_unknown_candidate_are_refused(registry_settings, recent_shots):
    from models.train import train_and_register

    settings = registry_settings()
    with pytest.raises(ValueError, match="too few"):
        train_and_register(settings, recent_shots.iloc[:50], data_name="tiny.csv")
    with pytest.raises(ValueError, match="unknown candidate"):
        train_and_register(settings, recent_shots, data_name="x.csv", candidates=["svm"])


def test_the_registered_model_is_recalibrated_only_when_it_helped_on_unseen_shots(trained):
    from models import registry

    settings, frame, result = trained
    found = result.recalibration
    best = next(r for r in result.candidates if r.name == result.candidate)
    assert best.model.calibration == found.calibration
    if found.calibration is not None:
        assert found.after["log_loss"] < found.before["log_loss"]
    else:
        assert found.after is None or found.after["log_loss"] >= found.before["log_loss"]
    assert result.metrics["recalibrated"] == float(found.calibration is not None)
    # What the registry serves is what training measured: the calibration travels with it.
    served = registry.load_version(settings, result.version)
    x = build_features(frame)[-500:]
    np.testing.assert_allclose(served.predict(x), best.model.predict(x), rtol=1e-9)
