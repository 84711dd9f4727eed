import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, brier_score_loss, f1_score, log_loss, roc_auc_score

from models.evaluate import (
    HISTORY_BANDS,
    ModelUnavailableError,
    evaluate,
    evaluate_registered,
    history_labels,
)
from models.features import FEATURE_SET, build_features
from models.registry import Champion
from models.shot_model import ShotModel


@pytest.fixture(scope="module")
def small_model(fit_and_check):
    """A known small model: a logistic regression on three of the features."""
    x_fit, y_fit, _, _ = fit_and_check
    columns = [2, 3, 7]  # distances and shot value

    class ThreeColumns(LogisticRegression):
        def fit(self, x, y):
            return super().fit(x[:, columns], y)

        def predict_proba(self, x):
            return super().predict_proba(x[:, columns])

    return ShotModel("small", ThreeColumns().fit(x_fit, y_fit))


@pytest.fixture(scope="module")
def later_shots(recent_shots):
    return recent_shots.iloc[30_000:]


def test_metrics_match_sklearn_on_a_known_model(small_model, later_shots):
    result = evaluate(Champion("test", "3", small_model), later_shots, batch_size=777)
    y = later_shots["made"].to_numpy()
    p = small_model.predict(build_features(later_shots))
    assert result.rows == len(later_shots) and result.model_version == "3"
    assert result.metrics["log_loss"] == pytest.approx(log_loss(y, p))
    assert result.metrics["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert result.metrics["brier"] == pytest.approx(brier_score_loss(y, p))
    assert result.metrics["accuracy"] == pytest.approx(accuracy_score(y, p >= 0.5))
    assert result.metrics["f1"] == pytest.approx(f1_score(y, p >= 0.5))
    assert result.mean_prediction == pytest.approx(p.mean())
    assert sum(month["rows"] for month in result.months) == result.rows


def test_since_keeps_only_shots_from_that_date(small_model, later_shots):
    since = int(later_shots["game_date"].iloc[len(later_shots) // 2])
    result = evaluate(Champion("test", "3", small_model), later_shots, since=since)
    assert result.rows == int((later_shots["game_date"] >= since).sum())
    assert result.first_date == since and result.since == since
    with pytest.raises(ValueError, match="no labelled shots on or after 21000101"):
        evaluate(Champion("test", "3", small_model), later_shots, since=21000101)


@pytest.fixture(scope="module")
def three_seasons(shots_frame):
    """Real shots of three seasons in time order: Kobe Bryant's April-June 2009 (444 of them in
    the playoffs), 2,000 Timberwolves shots of January 2018 and 3,000 shots of March 2019."""
    dates = shots_frame["game_date"]
    return pd.concat(
        [
            shots_frame[(dates >= 20090401) & (dates <= 20090630)],
            shots_frame[dates >= 20180101].iloc[:2_000],
            shots_frame[dates >= 20190301].iloc[:3_000],
        ],
        ignore_index=True,
    )


@pytest.fixture(scope="module")
def by_segment(small_model, three_seasons):
    return evaluate(Champion("test", "3", small_model), three_seasons).segments


def test_every_segment_kind_accounts_for_every_shot(by_segment, three_seasons):
    assert set(by_segment) == {"season", "season_type", "zone", "history"}
    for kind, rows in by_segment.items():
        assert sum(row["rows"] for row in rows) == len(three_seasons), kind


def test_shots_fall_in_the_season_of_their_date(by_segment):
    seasons = {row["season"]: row["rows"] for row in by_segment["season"]}
    assert seasons == {"2008-09": 553, "2017-18": 2_000, "2018-19": 3_000}


def test_playoff_shots_are_measured_apart(by_segment, three_seasons):
    types = {row["season_type"]: row for row in by_segment["season_type"]}
    assert set(types) == {"Regular Season", "Playoffs"}
    playoffs = types["Playoffs"]
    made = three_seasons.loc[three_seasons["season_type"] == "Playoffs", "made"]
    assert playoffs["rows"] == 444 and playoffs["make_rate"] == pytest.approx(made.mean())
    assert 0 < playoffs["ece"] < 0.5 and 0 < playoffs["log_loss"] < 1


def test_zones_are_the_files_zones_most_shots_first(by_segment, three_seasons):
    zones = [row["zone"] for row in by_segment["zone"]]
    assert zones == three_seasons["shot_zone_basic"].value_counts().index.tolist()


def test_history_bands_count_each_players_earlier_shots(by_segment, three_seasons):
    bands = [(row["history"], row["rows"]) for row in by_segment["history"]]
    assert [label for label, _ in bands] == history_labels()  # fewest earlier shots first
    shots_per_player = three_seasons["player_id"].value_counts().to_numpy()
    # A player with n shots has min(n, 50) in "0-49", then up to 250 in "50-299", and so on.
    for (label, rows), lower, upper in zip(
        bands, HISTORY_BANDS, [*HISTORY_BANDS[1:], np.inf], strict=True
    ):
        assert rows == np.clip(shots_per_player - lower, 0, upper - lower).sum(), label
    # And they are the earliest ones: "0-49" holds each player's first 50 shots in time.
    first = three_seasons.groupby("player_id").head(HISTORY_BANDS[1])
    assert by_segment["history"][0]["make_rate"] == pytest.approx(first["made"].mean())


def test_a_segment_with_one_outcome_gives_no_auc_and_valid_json(small_model, three_seasons):
    # Only the made playoff shots: the Playoffs segment has a single class.
    made_in_playoffs = (three_seasons["season_type"] == "Regular Season") | (
        three_seasons["made"] == 1
    )
    result = evaluate(Champion("test", "3", small_model), three_seasons[made_in_playoffs])
    playoffs = next(r for r in result.segments["season_type"] if r["season_type"] == "Playoffs")
    assert np.isnan(playoffs["roc_auc"]) and playoffs["make_rate"] == 1.0
    text = json.dumps(result.as_dict(), allow_nan=False)  # raises on a NaN
    back = json.loads(text)["segments"]["season_type"]
    assert next(r for r in back if r["season_type"] == "Playoffs")["roc_auc"] is None


@pytest.fixture(scope="module")
def registered(tmp_path_factory, small_model, fit_and_check):
    """A store holding the small model as version 1 with the champion alias."""
    import mlflow

    from infra.mlflow_store import configure_mlflow
    from models.registry import set_champion
    from models.shot_model import log_shot_model
    from parivision.settings import Settings

    tmp = tmp_path_factory.mktemp("evaluate")
    settings = Settings(home=tmp / "home", mlflow_tracking_uri=f"sqlite:///{tmp}/mlflow.db")
    configure_mlflow(settings)
    with mlflow.start_run():
        mlflow.set_tags({"feature_set": FEATURE_SET})
        info = log_shot_model(
            small_model, fit_and_check[2], registered_model_name="parivision-shot"
        )
    set_champion(settings, str(info.registered_model_version))
    return settings


def test_the_cli_prints_a_table_then_the_same_metrics_as_json(registered, nba_csv, small_model):
    from typer.testing import CliRunner

    from models.data import load_shots
    from parivision.cli import app

    env = {"PARIVISION_MLFLOW_TRACKING_URI": registered.mlflow()}
    result = CliRunner().invoke(
        app, ["evaluate", "--data", str(nba_csv), "--since", "20190301"], env=env
    )
    assert result.exit_code == 0, result.output
    assert "2019-03" in result.stdout  # the month table
    assert "by segment" in result.stdout and "Restricted Area" in result.stdout
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    expected = evaluate(Champion("x", "1", small_model), load_shots(nba_csv), since=20190301)
    assert summary["rows"] == expected.rows and summary["model_version"] == "1"
    for key in ("roc_auc", "log_loss", "brier", "ece", "accuracy"):
        assert summary[key] == pytest.approx(expected.metrics[key], abs=1e-6)
    segments = summary["segments"]
    assert [row["season"] for row in segments["season"]] == ["2018-19"]
    assert segments["season_type"][0]["season_type"] == "Regular Season"
    for kind in ("season", "season_type", "zone", "history"):
        assert sum(row["rows"] for row in segments[kind]) == expected.rows, kind


def test_the_cli_fails_clearly_on_a_version_that_is_not_there(registered, nba_csv):
    from typer.testing import CliRunner

    from parivision.cli import app

    env = {"PARIVISION_MLFLOW_TRACKING_URI": registered.mlflow()}
    result = CliRunner().invoke(app, ["evaluate", "--data", str(nba_csv), "--model", "7"], env=env)
    assert result.exit_code == 1
    assert "has no version 7" in result.stderr


def test_an_absent_store_is_reported_not_created(tmp_path, later_shots):
    from parivision.settings import Settings

    settings = Settings(home=tmp_path, mlflow_tracking_uri=f"sqlite:///{tmp_path}/none.db")
    with pytest.raises(ModelUnavailableError, match="no MLflow store at"):
        evaluate_registered(settings, later_shots)
    assert not (tmp_path / "none.db").exists()


def test_an_unreachable_tracking_server_is_reported(later_shots):
    from parivision.settings import Settings

    settings = Settings(mlflow_tracking_uri="http://127.0.0.1:9")
    with pytest.raises(ModelUnavailableError, match="cannot be used"):
        evaluate_registered(settings, later_shots)


def test_a_store_without_a_champion_says_to_train(registry_settings, later_shots):
    with pytest.raises(ModelUnavailableError, match="alias 'champion'.*parivision train"):
        evaluate_registered(registry_settings(), later_shots)


def test_form_can_start_from_a_history_as_it_would_for_a_warm_stream(recent_shots):
    """``evaluate`` with the players' states after earlier shots scores the later shots with the
    form batch work computes over both together; without them, with form from nothing."""
    from models.features import FEATURE_NAMES
    from models.form import form_states

    class PlayerRate:  # answers each shot's player_rate: the form is what is measured
        def predict(self, x):
            return x[:, FEATURE_NAMES.index("player_rate")]

    earlier, later = recent_shots.iloc[:30_000], recent_shots.iloc[30_000:]
    champion = Champion("test", "3", PlayerRate())
    rate = FEATURE_NAMES.index("player_rate")
    warm = evaluate(champion, later, warm=form_states(earlier))
    assert warm.mean_prediction == pytest.approx(build_features(recent_shots)[30_000:, rate].mean())
    cold = evaluate(champion, later)
    assert cold.mean_prediction == pytest.approx(build_features(later)[:, rate].mean())
    assert abs(warm.mean_prediction - cold.mean_prediction) > 1e-4


def test_the_cli_notes_the_shots_dated_in_the_version_s_training_and_validation_windows(
    tmp_path, nba_csv, small_model, fit_and_check
):
    """By hand: 3 shots of 1 March 2019 (trained on), 4 of 2 March (chosen on), 3 of 5 March
    and 2 of 10 March (neither); with `--since 20190302` the 3 trained-on shots are not read."""
    import mlflow
    from typer.testing import CliRunner

    from infra.mlflow_store import configure_mlflow
    from models.registry import client, set_champion
    from models.shot_model import log_shot_model
    from parivision.cli import app
    from parivision.settings import Settings

    raw = pd.read_csv(nba_csv, low_memory=False)
    raw = raw.sort_values(["Game Date", "Game ID", "Game Event ID"], kind="stable")
    picked = {20190301: 3, 20190302: 4, 20190305: 3, 20190310: 2}
    rows = pd.concat([raw[raw["Game Date"] == day].iloc[:n] for day, n in picked.items()])
    data = tmp_path / "twelve.csv"
    rows.to_csv(data, index=False)

    settings = Settings(home=tmp_path / "home", mlflow_tracking_uri=f"sqlite:///{tmp_path}/m.db")
    configure_mlflow(settings)
    with mlflow.start_run():
        mlflow.set_tags({"feature_set": FEATURE_SET})
        info = log_shot_model(
            small_model, fit_and_check[2], registered_model_name=settings.registered_model()
        )
    version = str(info.registered_model_version)
    window = {
        "train_from": "20181016",
        "train_to": "20190301",
        "valid_from": "20190302",
        "valid_to": "20190304",
    }
    for key, value in window.items():
        client(settings).set_model_version_tag(settings.registered_model(), version, key, value)
    set_champion(settings, version)

    env = {"PARIVISION_MLFLOW_TRACKING_URI": settings.mlflow()}
    result = CliRunner().invoke(app, ["evaluate", "--data", str(data)], env=env)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["rows"] == 12
    assert summary["rows_in_training_window"] == 3
    assert summary["rows_in_validation_window"] == 4
    notes = " ".join(result.stderr.split())  # as read, whatever the console's width
    assert "3 of these shots are dated within the window this version was trained on" in notes
    assert "4 of these shots are dated within the window this version was chosen on" in notes

    later = CliRunner().invoke(
        app, ["evaluate", "--data", str(data), "--since", "20190302"], env=env
    )
    assert later.exit_code == 0, later.output
    summary = json.loads(later.stdout.strip().splitlines()[-1])
    assert summary["rows"] == 9
    assert summary["rows_in_training_window"] == 0
    assert summary["rows_in_validation_window"] == 4
    assert "was trained on" not in later.stderr
