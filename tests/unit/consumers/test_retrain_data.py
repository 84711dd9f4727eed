"""What a retrain learns from: the champion's recorded lineage read again plus the store's new
labels, minus the shots the challenger is judged on, on a real MLflow store.

The expected rows are counted here with pandas on the same CSV, not by the code under test.
"""

from __future__ import annotations

import pandas as pd
import pytest

from consumers.retrain_data import NotReady, errors_of, labelled_frame, training_data
from models.data import shot_ids, training_frames
from models.lineage import LINEAGE_TAG, Lineage, lineage_of
from models.reference import validation_set
from models.registry import version_tags
from models.train import train_and_register
from parivision.settings import Settings
from parivision.store import SHOTS
from tests.unit.consumers.retrain_fakes import Database, _store

UNTIL = 20181215


@pytest.fixture
def league_csv(nba_csv, tmp_path):
    """6,000 league shots of December 2018 in game order, in the file's 22 columns."""
    raw = pd.read_csv(nba_csv, low_memory=False)
    raw = raw[(raw["Game Date"] >= 20181201) & (raw["Game Date"] <= 20181231)]
    raw = raw.sort_values(["Game Date", "Game ID", "Game Event ID"], kind="stable").iloc[:6000]
    path = tmp_path / "league.csv"
    raw.to_csv(path, index=False)
    return path, raw


def _trained_champion(league_csv, tmp_path, name: str, half_life_days: float = 0.0):
    """A champion trained as `parivision train --data league.csv --until 20181215
    [--half-life-days D]` would: its settings and version."""
    from infra.mlflow_store import configure_mlflow

    path, _ = league_csv
    settings = Settings(
        home=tmp_path / "home",
        mlflow_tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
        mongodb_database="unit",
        model_name=name,
    )
    configure_mlflow(settings)
    frame, data_name = training_frames([str(path)], until=UNTIL)
    version = train_and_register(
        settings,
        frame,
        data_name=data_name,
        candidates=["logreg"],
        make_champion=True,
        half_life_days=half_life_days,
        lineage=lineage_of([str(path)], until=UNTIL, half_life_days=half_life_days or None),
    ).version
    return settings, version


@pytest.fixture
def champion(league_csv, tmp_path):
    """A champion trained as `parivision train --data league.csv --until 20181215` would."""
    return _trained_champion(league_csv, tmp_path, "lineage-unit")


def test_a_retrain_learns_the_champion_s_shots_and_the_store_s_but_not_those_it_is_judged_on(
    champion, league_csv, shots_frame
):
    settings, version = champion
    path, raw = league_csv
    recorded = Lineage.from_json(version_tags(settings, version)[LINEAGE_TAG])
    assert recorded.describe() == f"league.csv until {UNTIL}"

    db = Database()
    _store(db, shots_frame.iloc[:1000], start=1000.0, p=0.45)  # Kobe Bryant, 1996-97
    window = {d["shot_id"] for d in db[SHOTS].docs[-200:]}  # the newest 200 labels
    reference = validation_set(settings, version)
    data = training_data(settings, db, champion=version, leave_out=window | set(reference.all_ids))

    # By hand: the file's shots up to the date, less the champion's validation window, and the
    # store's 1,000 less the 200 it is judged on.
    learned = raw[raw["Game Date"] <= UNTIL]
    ids = (learned["Game ID"].astype(str) + "-" + learned["Game Event ID"].astype(str)).tolist()
    assert set(reference.all_ids) <= set(ids) and len(reference.all_ids) > 0
    expected = (len(ids) - len(reference.all_ids)) + (1000 - 200)
    assert len(data.frame) == expected
    got = set(shot_ids(data.frame))
    assert not got & set(reference.all_ids) and not got & window
    kobe = {d["shot_id"] for d in db[SHOTS].docs[:800]}
    assert kobe <= got
    assert data.name == f"league.csv until {UNTIL} + mongodb:unit"
    assert data.counts["left_out"] == len(reference.all_ids) + 200
    # What the challenger records: the same file and filter, and this store.
    assert [s.describe() for s in data.lineage.sources] == [
        f"league.csv until {UNTIL}",
        "mongodb:unit",
    ]

    alone = training_data(
        settings.model_copy(update={"retrain_store_only": True}), db, champion=version
    )
    assert len(alone.frame) == 1000 and alone.name == "mongodb:unit"


def test_a_champion_without_a_lineage_or_a_file_gone_makes_the_retrain_wait(
    champion, league_csv, shots_frame
):
    settings, version = champion
    path, _ = league_csv
    db = Database()
    _store(db, shots_frame.iloc[:300], start=1000.0, p=0.45)
    path.unlink()
    with pytest.raises(NotReady, match="league.csv is not here any more"):
        training_data(settings, db, champion=version)
    from models.registry import tag_version

    tag_version(settings, version, {LINEAGE_TAG: None})
    with pytest.raises(NotReady, match="does not record what it was trained on"):
        training_data(settings, db, champion=version)


@pytest.fixture(params=[45.0, 0.0], ids=["weighted", "unweighted"])
def weighted_champion(request, league_csv, tmp_path):
    """A champion trained with `--half-life-days D`, D 45 or 0 (unweighted), and D."""
    settings, version = _trained_champion(
        league_csv, tmp_path, "lineage-weighted-unit", request.param
    )
    return settings, version, request.param


def test_a_retrain_weights_its_shots_with_the_half_life_the_champion_was_trained_with(
    weighted_champion, shots_frame
):
    from consumers.retrain_trigger import RetrainLoop
    from models.drift import MANUAL, TriggerConfig
    from tests.unit.consumers.retrain_fakes import Judge, Recorder

    settings, version, trained_with = weighted_champion
    db = Database()
    _store(db, shots_frame.iloc[:1000], start=1000.0, p=0.45)
    recorder = Recorder()
    loop = RetrainLoop(
        # The loop's own default says 90 days; the champion's lineage (45, or none: unweighted)
        # wins.
        settings.model_copy(
            update={
                "train_half_life_days": 90.0,
                "promotion_min_players": 0,
                "promotion_min_teams": 0,
                "promotion_min_games": 0,
            }
        ),
        db,
        TriggerConfig(min_new_labelled=0, every_s=None, drift_share=None, error_drift=False),
        window=300,
        holdout=200,
        train=recorder.train,
        challenge=recorder.challenge,
        champion=lambda: (version, None, ""),
        tag_version=recorder.tag_version,
        judge=Judge(),
        reference_ids=lambda champion: set(),
        clock=lambda: 5000.0,
    )
    event = loop.step(manual=MANUAL)

    assert event["status"] == "refused"  # trained and challenged, not waiting
    ((frame, kwargs),) = recorder.frames
    assert kwargs["half_life_days"] == trained_with
    # The challenger records it too, so its own retrain uses it again.
    assert (kwargs["lineage"].half_life_days or 0.0) == trained_with
    assert (Lineage.from_json(event["lineage"]).half_life_days or 0.0) == trained_with


def test_labelled_frame_leaves_out_the_holdout_and_is_in_game_time_order(store):
    frame = labelled_frame(store, holdout=200)
    assert len(frame) == 1400
    assert frame["game_date"].is_monotonic_increasing
    assert set(frame["made"]) == {0, 1}


def test_errors_follow_the_predictions():
    assert errors_of([{"outcome": 1, "p_champion": 0.25}, {"outcome": 0}]) == [0.75]
