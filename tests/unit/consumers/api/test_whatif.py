"""`GET /whatif`: the shot the NBA would record at X/Y, in a context stated and returned, priced
by the champion; a date or clock that does not exist is a 422, an unknown player a 404."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from consumers.api import whatif
from consumers.api.history import PlayerHistories
from consumers.api.serving import Served
from consumers.api.whatif import NEW_GAME, _is_a_day
from models.registry import Champion
from parivision.schemas import MAX_ID
from tests.unit.consumers.api.conftest import FakeCollection, FakeDb

KOBE = 977
LATEST = {  # Kobe's latest stored shot: a playoff game (game ids 4... are playoffs)
    "player_id": KOBE,
    "player_name": "Kobe Bryant",
    "team_id": 1610612747,
    "team_name": "Los Angeles Lakers",
    "game_id": 41800101,
    "game_date": 20190420,
}


class Constant:
    def predict(self, matrix):
        return np.full(len(matrix), 0.5)


class Shots(FakeCollection):
    """``find_one`` answers a player's latest shot or a game's, from what the test stored."""

    def __init__(self) -> None:
        super().__init__()
        self.latest: dict | None = None
        self.games: dict[int, dict] = {}

    def find_one(self, query=None, projection=None, sort=None):
        if "game_id" in query:
            return self.games.get(query["game_id"])
        return self.latest


@pytest.fixture
def shots() -> Shots:
    return Shots()


def _client(shots: Shots, served: Served | None = None, last_seen=None) -> TestClient:
    db = FakeDb()
    db["shots"] = shots
    served = served or Served(Champion("m", "3", Constant()), {"version": "3"})
    extra = {"last_seen": last_seen} if last_seen else {}
    app = FastAPI()
    app.include_router(
        whatif.router(SimpleNamespace(served=served), PlayerHistories(db), db, **extra)
    )
    return TestClient(app)


@pytest.mark.parametrize(
    ("day", "real"),
    [(20190110, True), (20200229, True), (20190229, False), (20191301, False), (20190100, False)],
)
def test_a_day_is_one_the_calendar_has(day, real):
    assert _is_a_day(day) is real


def test_a_date_the_calendar_does_not_have_is_a_422_naming_game_date(shots):
    answer = _client(shots).get(
        "/whatif", params={"player_id": KOBE, "x": 0, "y": 0, "game_date": 20190229}
    )
    assert answer.status_code == 422
    assert answer.json()["detail"] == [
        {
            "loc": ["query", "game_date"],
            "msg": "20190229 is not a date (YYYYMMDD)",
            "type": "value_error",
        }
    ]


def test_a_player_with_no_stored_shot_is_a_404_saying_to_pass_a_date(shots):
    answer = _client(shots).get("/whatif", params={"player_id": KOBE, "x": 0, "y": 0})
    assert answer.status_code == 404
    assert answer.json()["detail"] == (
        "no stored shots for player 977: pass game_date to ask anyway"
    )


def test_an_unknown_game_without_a_date_is_a_404_naming_the_game(shots):
    shots.latest = LATEST
    answer = _client(shots).get(
        "/whatif", params={"player_id": KOBE, "x": 0, "y": 0, "game_id": 21800999}
    )
    assert answer.status_code == 404
    assert answer.json()["detail"] == "no stored shots of game 21800999: pass game_date with it"


def test_a_player_with_no_stored_shot_is_priced_when_a_date_is_given(shots):
    answer = _client(shots).get(
        "/whatif", params={"player_id": KOBE, "x": 0, "y": 0, "game_date": 20190110}
    )
    assert answer.status_code == 200
    context = answer.json()["context"]
    assert context["game_date"] == 20190110 and context["season_type"] == "Regular Season"


def test_by_default_the_shot_opens_a_new_game_on_the_player_s_latest_date(shots):
    shots.latest = LATEST
    answer = _client(shots).get("/whatif", params={"player_id": KOBE, "x": 0, "y": 260})
    assert answer.status_code == 200
    body = answer.json()
    shot, context, prediction = body["shot"], body["context"], body["prediction"]
    # 26 ft straight out: the NBA's zones there, a three.
    assert (shot["shot_zone_basic"], shot["shot_type"]) == ("Above the Break 3", "3PT Field Goal")
    assert shot["shot_distance"] == 26
    assert shot["action_type"] == "Jump Shot"  # nothing stored from there: the generic action
    assert shot["game_id"] == NEW_GAME == MAX_ID
    assert shot["player_name"] == "Kobe Bryant" and shot["team_id"] == 1610612747
    assert context == {
        "game_id": None,
        "game": "a new game (no earlier shot in it)",
        "game_date": 20190420,
        "period": 1,
        "clock": "6:00",
        "season_type": "Playoffs",  # the latest game's
        "action_type": "Jump Shot",
        "form_as_of": prediction["form_history"],
        "defaulted": ["game_id", "game_date", "season_type", "action_type"],
    }
    # The champion says 0.5: odds 2.0, a three worth 1.5 points.
    assert prediction["probability"] == 0.5
    assert prediction["fair_odds"] == 2.0 and prediction["expected_points"] == 1.5


def test_a_stored_game_gives_its_date_and_its_season_type(shots):
    shots.latest = LATEST
    shots.games[21800500] = {"game_date": 20190105}
    params = {
        "player_id": KOBE,
        "x": 0,
        "y": 0,
        "game_id": 21800500,
        "period": 4,
        "minutes_remaining": 0,
        "seconds_remaining": 5,
    }
    body = _client(shots).get("/whatif", params=params).json()
    context = body["context"]
    assert context["game"] == "game 21800500" and context["game_date"] == 20190105
    assert context["season_type"] == "Regular Season" and context["clock"] == "0:05"
    assert context["defaulted"] == ["game_date", "season_type", "action_type"]
    assert body["shot"]["action_type"] == "Layup Shot"  # at the rim: the generic one inside 4 ft
    assert body["prediction"]["expected_points"] == 1.0  # a two at 0.5


def test_an_action_given_is_priced_as_given(shots):
    shots.latest = LATEST
    params = {"player_id": KOBE, "x": 0, "y": 0, "action_type": "Slam Dunk Shot"}
    body = _client(shots).get("/whatif", params=params).json()
    assert body["shot"]["action_type"] == "Slam Dunk Shot"
    assert body["context"]["action_type"] == "Slam Dunk Shot"
    assert "action_mix" not in body["prediction"]


def test_a_clock_the_period_does_not_have_is_a_422_at_that_field(shots):
    shots.latest = LATEST
    answer = _client(shots).get(
        "/whatif", params={"player_id": KOBE, "x": 0, "y": 0, "period": 5, "minutes_remaining": 7}
    )
    assert answer.status_code == 422
    (problem,) = answer.json()["detail"]
    assert problem["loc"] == ["query", "minutes_remaining"]
    assert "period 5 (5 minutes)" in problem["msg"]


def test_without_an_action_the_player_s_mix_from_the_zone_is_priced(shots):
    shots.latest = LATEST
    shots.groups = [
        {"_id": {"zone": "Restricted Area", "action": "Layup Shot"}, "n": 21},
        {"_id": {"zone": "Restricted Area", "action": "Slam Dunk Shot"}, "n": 7},
    ]
    body = _client(shots).get("/whatif", params={"player_id": KOBE, "x": 0, "y": 0}).json()
    assert body["shot"]["action_type"] == "Layup Shot"  # the most frequent
    assert body["context"]["action_type"] == "the player's mix from the Restricted Area (28 shots)"
    mix = body["prediction"]["action_mix"]
    assert mix["whose"] == "player" and mix["shots"] == 28
    assert [a["share"] for a in mix["actions"]] == [0.75, 0.25]  # 21 / 28 and 7 / 28


def test_a_player_only_on_the_live_feed_is_priced_from_his_feed_shot(shots):
    feed = {**LATEST, "game_id": 21800777, "game_date": 20190301, "player_name": "New Guy"}
    body = (
        _client(shots, last_seen=lambda player_id: feed)
        .get("/whatif", params={"player_id": KOBE, "x": 0, "y": 0})
        .json()
    )
    assert body["shot"]["player_name"] == "New Guy" and body["context"]["game_date"] == 20190301


def test_without_a_champion_the_whatif_is_a_503(shots):
    shots.latest = LATEST
    answer = _client(shots, served=Served(champion=None)).get(
        "/whatif", params={"player_id": KOBE, "x": 0, "y": 0}
    )
    assert answer.status_code == 503
