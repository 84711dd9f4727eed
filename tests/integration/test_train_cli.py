"""`parivision train` end to end, as a user runs it, on real shots of the 2018-19 league.

What it registers is checked against the CSV read here with pandas (row counts and game dates of
the slice asked for), the real outcomes of shots the model never saw, and, for
``--half-life-days``, the recency weights worked out by hand: a shot D days older than the
newest training shot counts half, 2D a quarter.  A logistic regression with an intercept fitted
with sample weights ``w`` satisfies ``sum(w * (p - y)) = 0`` on its training shots (the
intercept's gradient is zero at the optimum), so its mean prediction weighted by ``w`` is the
make rate weighted by ``w``: the model leans to the recent shots exactly as much as asked.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import numpy as np
import pandas as pd
import pytest

from models import registry
from tests.integration.retraining import cli

pytestmark = pytest.mark.integration

WEEK = (20181105, 20181111)  # a week of the whole league: what the champion learns
NEXT_WEEK = (20181112, 20181118)  # the week after: the challenger learns it, the champion never
MONTH = (20181016, 20181115)  # the season's first month, for the recency weights
HALF_LIFE_DAYS = 7


def _train(settings, services, nba_csv, window, *options) -> str:
    """``parivision train`` on the window's shots of nba_csv; the version it registered."""
    last = cli(
        settings,
        services,
        "train",
        "--data",
        str(nba_csv),
        "--since",
        str(window[0]),
        "--until",
        str(window[1]),
        *options,
    )
    prefix = f"registered {settings.registered_model()} v"
    assert last.startswith(prefix), last
    return last[len(prefix) :].split(" ", 1)[0]


def _dates_in(nba_csv, window) -> pd.Series:
    """Every row's game date within the window, read from the CSV with pandas alone."""
    dates = pd.read_csv(nba_csv, usecols=["Game Date"])["Game Date"]
    return dates[dates.between(*window)]


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def test_train_registers_a_tagged_champion_of_the_slice_asked_for_and_a_challenger_beside_it(
    services, settings_factory, nba_csv, shots_frame
):
    settings = settings_factory(model_name=f"train-cli-{uuid.uuid4().hex[:6]}")
    version = _train(settings, services, nba_csv, WEEK, "--candidate", "lightgbm", "--champion")

    # Registered under the test's model, and the champion alias on it.
    assert registry.champion_version(settings) == version
    tags = registry.version_tags(settings, version)
    assert tags["candidate"] == "lightgbm"
    assert tags["data"] == f"nba_shots.csv since {WEEK[0]} until {WEEK[1]}"

    # Every shot of the week and no other: the counts and dates the CSV has for it.
    dates = _dates_in(nba_csv, WEEK)
    assert len(dates) > 5_000  # a week of the whole league
    assert int(tags["train_rows"]) + int(tags["valid_rows"]) == len(dates)
    assert int(tags["train_from"]) == dates.min() and int(tags["valid_to"]) == dates.max()
    # Split in time, on whole dates, about the most recent 15% validating.
    assert int(tags["train_to"]) < int(tags["valid_from"])
    assert int(tags["valid_rows"]) == int((dates >= int(tags["valid_from"])).sum())
    assert 0.05 < int(tags["valid_rows"]) / len(dates) < 0.25

    # The lineage says where those shots came from, so a retrain can read them again.
    lineage = json.loads(tags["lineage"])
    assert lineage == {
        "sources": [
            {
                "kind": "file",
                "location": str(nba_csv.resolve()),
                "since": WEEK[0],
                "until": WEEK[1],
            }
        ]
    }

    # A model, not a coin: on the next week's shots (never seen) it beats the base rate of the
    # week it learned.
    frame = shots_frame[shots_frame["game_date"].between(WEEK[0], NEXT_WEEK[1])]
    frame = frame.reset_index(drop=True)
    from models.features import build_features

    matrix = build_features(frame)
    unseen = (frame["game_date"] >= NEXT_WEEK[0]).to_numpy()
    y = frame["made"].to_numpy()[unseen].astype(float)
    rate = frame.loc[~unseen, "made"].mean()
    champion = registry.load_version(settings, version)
    assert _log_loss(y, champion.predict(matrix[unseen])) < _log_loss(y, np.full(len(y), rate))

    # --challenger registers the next week's model beside it, with no alias; the champion stays.
    challenger = _train(
        settings, services, nba_csv, NEXT_WEEK, "--candidate", "lightgbm", "--challenger"
    )
    assert challenger != version
    assert registry.champion_version(settings) == version
    registered = registry.client(settings).get_model_version(
        settings.registered_model(), challenger
    )
    assert registered.aliases == []
    tags = registry.version_tags(settings, challenger)
    rows = int(tags["train_rows"]) + int(tags["valid_rows"])
    assert rows == len(_dates_in(nba_csv, NEXT_WEEK))
    assert json.loads(tags["lineage"])["sources"][0]["since"] == NEXT_WEEK[0]


def _age_days(dates: np.ndarray, newest: int) -> np.ndarray:
    """Days each YYYYMMDD date is before ``newest``, by the calendar."""

    def day(value) -> dt.date:
        return dt.datetime.strptime(str(int(value)), "%Y%m%d").date()

    last = day(newest)
    return np.array([(last - day(d)).days for d in dates], dtype=float)


def _days_before(date: int, days: int) -> int:
    earlier = dt.datetime.strptime(str(date), "%Y%m%d").date() - dt.timedelta(days=days)
    return int(earlier.strftime("%Y%m%d"))


def _training_shots(settings, version, shots_frame):
    """The version's training shots (its tags say up to which date), their features as the
    model saw them, their outcomes and game dates."""
    from models.features import build_features

    tags = registry.version_tags(settings, version)
    frame = shots_frame[shots_frame["game_date"].between(*MONTH)].reset_index(drop=True)
    train = (frame["game_date"] <= int(tags["train_to"])).to_numpy()
    assert int(train.sum()) == int(tags["train_rows"])
    matrix = build_features(frame)[train]
    return matrix, frame["made"].to_numpy()[train].astype(float), frame["game_date"][train]


def test_half_life_days_weights_each_training_shot_by_half_per_half_life_of_age(
    services, settings_factory, nba_csv, shots_frame
):
    settings = settings_factory(model_name=f"half-life-{uuid.uuid4().hex[:6]}")
    weighted = _train(
        settings,
        services,
        nba_csv,
        MONTH,
        "--candidate",
        "logreg",
        "--half-life-days",
        str(HALF_LIFE_DAYS),
    )
    flat = _train(
        settings, services, nba_csv, MONTH, "--candidate", "logreg", "--half-life-days", "0"
    )

    # Recorded as asked: on the version's lineage (a retrain weights alike) and the run.
    tags = {v: registry.version_tags(settings, v) for v in (weighted, flat)}
    assert json.loads(tags[weighted]["lineage"])["half_life_days"] == HALF_LIFE_DAYS
    assert "half_life_days" not in json.loads(tags[flat]["lineage"])
    client = registry.client(settings)
    for version, recorded in ((weighted, str(float(HALF_LIFE_DAYS))), (flat, "none")):
        run_id = client.get_model_version(settings.registered_model(), version).run_id
        parent = client.get_run(run_id).data.tags["mlflow.parentRunId"]
        assert client.get_run(parent).data.params["half_life_days"] == recorded

    # The weights a user asked for, by hand: the newest training date counts 1, a week before
    # it 1/2, two weeks 1/4, each day in between 2 ** (-days / 7).
    x, y, dates = _training_shots(settings, weighted, shots_frame)
    newest = int(dates.max())
    age = _age_days(dates.to_numpy(), newest)
    w = 0.5 ** (age / HALF_LIFE_DAYS)
    by_date = dict(zip(dates, w, strict=True))
    week_ago, two_weeks_ago = _days_before(newest, 7), _days_before(newest, 14)
    assert [by_date[d] for d in (newest, week_ago, two_weeks_ago)] == [1.0, 0.5, 0.25]
    # What that weighting makes different: the recent make rate is not the month's.
    assert abs(np.average(y, weights=w) - y.mean()) > 0.001

    # The model trained with them predicts, on its training shots weighted so, their make rate
    # weighted so; the unweighted one predicts the month's plain make rate and misses it.
    p = {v: registry.load_version(settings, v).model.predict_raw(x) for v in (weighted, flat)}
    gap = {v: float(np.average(p[v] - y, weights=w)) for v in p}
    assert abs(gap[weighted]) < 0.0005, gap
    assert abs(float(np.mean(p[flat] - y))) < 0.0005
    assert abs(gap[flat]) > 0.003, gap
    # Half the half-life or twice it would weight other shots: the model is off those weights.
    for other in (HALF_LIFE_DAYS / 2, HALF_LIFE_DAYS * 2):
        assert abs(np.average(p[weighted] - y, weights=0.5 ** (age / other))) > 0.002
