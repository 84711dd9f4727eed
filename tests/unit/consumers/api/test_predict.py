"""`/predict` and `/predict/batch`: the champion's probability priced as fair odds and expected
points, probabilities kept inside (0, 1), and a 422 that says which shot and field is wrong."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import orjson
import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

from consumers.api import predict
from consumers.api.history import PlayerHistories
from consumers.api.predict import MAX_BATCH, json_response, score
from consumers.api.serving import Served
from consumers.api.shots_in import parse_shot
from models.registry import P_MAX, Champion
from tests.unit.consumers.api.test_shots_in import RECORD, SHOT

INFO = {"name": "parivision-shot-make", "version": "3"}


class Constant:
    """A model that answers ``p`` for every shot."""

    def __init__(self, p: float) -> None:
        self.p = p

    def predict(self, matrix):
        return np.full(len(matrix), self.p)


class Learner:
    """An online learner that answers ``p`` (river's ``predict_proba_one``)."""

    def __init__(self, p: float) -> None:
        self.p = p

    def predict_proba_one(self, x):
        return {True: self.p, False: 1 - self.p}


class Counter:
    def __init__(self) -> None:
        self.count = 0

    def inc(self, n: int = 1) -> None:
        self.count += n


def _shot(**changes):
    """A validated shot (what ``score`` takes): the three from the top of the key, changed."""
    return parse_shot({**SHOT, "shot_id": "s1", **changes})


def _served(p: float, learners=None) -> Served:
    return Served(Champion("m", "3", Constant(p)), INFO, learners or {})


@pytest.fixture
def histories(fake_db) -> PlayerHistories:
    return PlayerHistories(fake_db)  # the store holds no shot: every player starts with no form


@pytest.fixture
def app_for(histories):
    def build(served: Served):
        counter = Counter()
        app = FastAPI()
        app.include_router(predict.router(SimpleNamespace(served=served), histories, counter))
        return TestClient(app), counter

    return build


def test_a_probability_is_priced_as_fair_odds_and_expected_points(histories):
    (answer,) = score(_served(0.25), histories, [_shot()])
    # A three made one time in four: odds 1 / 0.25 = 4.0, worth 3 x 0.25 = 0.75 points.
    assert answer["probability"] == 0.25
    assert answer["fair_odds"] == 4.0
    assert answer["shot_value"] == 3
    assert answer["expected_points"] == 0.75
    assert answer["model"] == INFO and answer["shot_id"] == "s1"
    assert answer["warnings"] == []


def test_a_two_is_worth_two_points(histories):
    rim = _shot(
        x=0,
        y=0,
        shot_type="2PT Field Goal",
        shot_distance=0,
        shot_zone_basic="Restricted Area",
        shot_zone_range="Less Than 8 ft.",
    )
    (answer,) = score(_served(0.6), histories, [rim])
    # 2 x 0.6 = 1.2 points; odds 1 / 0.6 = 1.667.
    assert answer["shot_value"] == 2
    assert answer["expected_points"] == pytest.approx(1.2)
    assert answer["fair_odds"] == pytest.approx(1.6667, abs=1e-4)


def test_a_certain_champion_is_held_inside_the_unit_interval_so_the_odds_stay_finite(histories):
    (answer,) = score(_served(1.0), histories, [_shot()])
    assert answer["probability"] == P_MAX == 0.9999
    assert answer["fair_odds"] == pytest.approx(1.0001, abs=1e-6)


def test_the_online_learners_answer_beside_the_champion_clipped_the_same_way(histories):
    served = _served(0.5, {"logreg": Learner(0.7), "sure": Learner(1.0)})
    (answer,) = score(served, histories, [_shot()])
    assert answer["online"] == {"logreg": pytest.approx(0.7), "sure": P_MAX}


def test_a_zone_that_contradicts_x_y_is_priced_as_the_zone_there_with_a_warning(histories):
    wrong = _shot(shot_zone_basic="Restricted Area")
    (answer,) = score(_served(0.4), histories, [wrong])
    (warning,) = answer["warnings"]
    assert warning == (
        "shot_zone_basic 'Restricted Area' contradicts X/Y (0, 260): priced as "
        "'Above the Break 3', the zone there"
    )


def test_without_a_champion_scoring_is_a_503_saying_to_train(histories):
    with pytest.raises(HTTPException) as raised:
        score(Served(champion=None), histories, [_shot()])
    assert raised.value.status_code == 503
    assert "`parivision train`" in raised.value.detail


def test_features_are_in_the_answer_only_when_asked(histories):
    (plain,) = score(_served(0.5), histories, [_shot()])
    (full,) = score(_served(0.5), histories, [_shot()], include_features=True)
    assert "features" not in plain and full["features"]["shot_value"] == 3.0


def test_json_answers_carry_numpy_numbers():
    answer = json_response({"p": np.float64(0.25), "n": np.int64(3)}, status_code=201)
    assert answer.status_code == 201 and orjson.loads(answer.body) == {"p": 0.25, "n": 3}


def test_predict_scores_a_virtualbets_record_and_counts_it(app_for):
    client, counter = app_for(_served(0.4))
    answer = client.post("/predict", json=RECORD)
    assert answer.status_code == 200
    assert answer.json()["shot_id"] == "21800500-7"
    assert answer.json()["expected_points"] == pytest.approx(1.2)  # 3 x 0.4
    assert counter.count == 1


def test_predict_without_a_champion_is_a_503(app_for):
    client, counter = app_for(Served(champion=None))
    answer = client.post("/predict", json=SHOT)
    assert answer.status_code == 503 and counter.count == 0


def test_a_body_that_is_not_json_is_a_422_saying_so(app_for):
    client, _ = app_for(_served(0.4))
    answer = client.post("/predict", content=b"{not json", headers={"content-type": "text/plain"})
    assert answer.status_code == 422
    (problem,) = answer.json()["detail"]
    assert problem["loc"] == ["body"] and problem["msg"].startswith("not valid JSON")


def test_a_bad_shot_is_a_422_at_its_field(app_for):
    client, _ = app_for(_served(0.4))
    answer = client.post("/predict", json={**SHOT, "y": 2000})
    assert answer.status_code == 422
    assert [p["loc"] for p in answer.json()["detail"]] == [["body", "y"]]


@pytest.mark.parametrize("body", [{}, {"shots": "all of them"}, [SHOT]])
def test_a_batch_without_a_list_of_shots_is_a_422(app_for, body):
    client, _ = app_for(_served(0.4))
    answer = client.post("/predict/batch", json=body)
    assert answer.status_code == 422
    assert answer.json()["detail"] == [
        {"loc": ["body", "shots"], "msg": "a list of shots is required", "type": "missing"}
    ]


def test_an_empty_batch_and_one_too_many_are_refused_with_the_bounds(app_for):
    client, _ = app_for(_served(0.4))
    empty = client.post("/predict/batch", json={"shots": []}).json()["detail"][0]
    assert empty["type"] == "too_short" and empty["msg"] == "0 shots; a batch holds 1 to 10,000"
    over = client.post("/predict/batch", json={"shots": [{}] * (MAX_BATCH + 1)})
    problem = over.json()["detail"][0]
    assert problem["type"] == "too_long" and problem["msg"].startswith("10,001 shots")


def test_a_batch_answers_each_shot_in_order_and_counts_the_refused(app_for):
    client, counter = app_for(_served(0.5))
    shots = [{**SHOT, "shot_id": "a"}, {**SHOT, "x": 999}, RECORD]
    answer = client.post("/predict/batch", json={"shots": shots}).json()
    first, bad, third = answer["predictions"]
    assert first["shot_id"] == "a" and third["shot_id"] == "21800500-7"
    assert bad["index"] == 1 and bad["errors"][0]["loc"] == ["body", "shots", 1, "x"]
    assert answer["refused"] == 1 and answer["model"] == INFO
    assert counter.count == 2  # only the scored ones


def test_a_batch_with_nothing_to_score_is_a_422_with_each_shot_s_errors(app_for):
    client, counter = app_for(_served(0.5))
    answer = client.post("/predict/batch", json={"shots": [{**SHOT, "x": 999}, "shot"]})
    assert answer.status_code == 422
    locs = [p["loc"] for p in answer.json()["detail"]]
    assert locs == [["body", "shots", 0, "x"], ["body", "shots", 1]]
    assert counter.count == 0


def test_a_three_claimed_at_the_rim_is_priced_as_the_two_it_is_with_a_warning(histories):
    rim = _shot(
        x=0,
        y=0,
        shot_distance=0,
        shot_zone_basic="Restricted Area",
        shot_zone_range="Less Than 8 ft.",
        shot_type="3PT Field Goal",
    )
    (answer,) = score(_served(0.5), histories, [rim])
    # From (0, 0) a make is worth 2: 2 x 0.5 = 1.0 expected points, and the client is told.
    assert answer["shot_value"] == 2 and answer["expected_points"] == 1.0
    assert any(w.startswith("shot_type") for w in answer["warnings"])
