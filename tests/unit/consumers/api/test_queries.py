"""`/shots`, `/games/{id}`, `/players/{id}` and `/leaderboard` on a fake store: the MongoDB
query each builds from what a client asks, and the answer it shapes from what the store holds."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from consumers.api import queries
from consumers.api.history import PlayerHistories
from consumers.api.names import PlayerDirectory, UnknownName
from tests.unit.consumers.api.conftest import FakeCollection

SCORED = {"scored_at": {"$exists": True}}
KOBE = 977
LAKERS = 1610612747  # the NBA's id for the Los Angeles Lakers


@pytest.fixture
def players() -> PlayerDirectory:
    table = FakeCollection()
    table.groups = [{"_id": KOBE, "name": "Kobe Bryant"}, {"_id": 2544, "name": "LeBron James"}]
    return PlayerDirectory(table)


@pytest.fixture
def shots(fake_db) -> FakeCollection:
    return fake_db["shots"]


@pytest.fixture
def client(fake_db, players) -> TestClient:
    app = FastAPI()
    app.include_router(queries.router(fake_db, PlayerHistories(fake_db), players))
    return TestClient(app)


def _shot(shot_id, **fields):
    doc = {
        "shot_id": shot_id,
        "game_id": 21800500,
        "game_date": 20190110,
        "player_id": KOBE,
        "team_id": LAKERS,
        "team_name": "Los Angeles Lakers",
        "period": 1,
        "minutes_remaining": 6,
        "seconds_remaining": 0,
        "scored_at": 1_700_000_000.0,
    }
    return {**doc, **fields}


@pytest.mark.parametrize("asked", ["Lakers", "LAL", "los angeles lakers", str(LAKERS)])
def test_a_team_is_found_by_nickname_abbreviation_full_name_or_id(asked):
    assert queries.team_filter(asked) == {"team_id": LAKERS}


def test_an_unknown_team_raises_with_the_nearest_names():
    with pytest.raises(UnknownName) as raised:
        queries.team_filter("Lakerz")
    assert "Los Angeles Lakers" in raised.value.nearest


def test_a_player_is_found_by_full_or_last_name(players):
    assert queries.player_filter("Kobe Bryant", players) == {"player_id": KOBE}
    assert queries.player_filter("james", players) == {"player_id": 2544}


def test_shots_for_a_player_by_name_in_a_date_range_ask_for_his_scored_shots_in_it(client, shots):
    answer = client.get(
        "/shots", params={"player": "Kobe Bryant", "date_from": 20190101, "date_to": 20190131}
    )
    assert answer.status_code == 200
    (call,) = shots.finds
    assert call["query"] == {
        **SCORED,
        "player_id": KOBE,
        "game_date": {"$gte": 20190101, "$lte": 20190131},
    }
    # Newest first, one more than the page to know whether there is another.
    assert call["sort"] == [("scored_at", -1), ("shot_id", -1)] and call["limit"] == 51


def test_shots_of_one_team_made_on_one_day(client, shots):
    client.get("/shots", params={"team": "LAL", "date": 20190110, "made": 1, "game_id": 7})
    assert shots.finds[0]["query"] == {
        **SCORED,
        "game_id": 7,
        "team_id": LAKERS,
        "game_date": 20190110,
        "outcome": 1,
    }


def test_a_range_open_at_one_end_has_only_that_end(client, shots):
    client.get("/shots", params={"date_to": 20190131})
    assert shots.finds[0]["query"]["game_date"] == {"$lte": 20190131}


def test_a_range_that_ends_before_it_starts_is_a_422_not_an_empty_page(client, shots):
    answer = client.get("/shots", params={"date_from": 20190201, "date_to": 20190131})
    assert answer.status_code == 422
    (problem,) = answer.json()["detail"]
    assert problem["loc"] == ["query", "date_from"]
    assert problem["msg"] == "date_from 20190201 is after date_to 20190131"
    assert shots.finds == []


def test_a_date_and_a_range_together_are_a_422_not_a_range_silently_dropped(client, shots):
    answer = client.get("/shots", params={"date": 20190115, "date_from": 20190101})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["query", "date"]
    assert shots.finds == []


def test_a_player_name_and_a_player_id_of_two_players_are_a_422_naming_both(client, shots):
    answer = client.get("/shots", params={"player": "Kobe Bryant", "player_id": 2544})
    assert answer.status_code == 422
    (problem,) = answer.json()["detail"]
    assert problem["loc"] == ["query", "player"]
    assert problem["msg"] == "player 'Kobe Bryant' is player 977, not player_id 2544"
    assert shots.finds == []


def test_a_page_ends_with_a_cursor_at_its_last_shot_and_the_cursor_asks_for_what_is_after(
    client, shots
):
    shots.docs = [
        _shot("c", scored_at=30.5),
        _shot("b", scored_at=20.25),
        _shot("a", scored_at=10.0),
    ]
    page = client.get("/shots", params={"limit": 2}).json()
    assert [s["shot_id"] for s in page["shots"]] == ["c", "b"]
    assert page["next_cursor"] == "20.25~b"

    client.get("/shots", params={"limit": 2, "cursor": page["next_cursor"]})
    assert shots.finds[1]["query"]["$or"] == [
        {"scored_at": {"$lt": 20.25}},
        {"scored_at": 20.25, "shot_id": {"$lt": "b"}},
    ]


def test_the_last_page_has_no_cursor(client, shots):
    shots.docs = [_shot("a")]
    assert client.get("/shots", params={"limit": 2}).json()["next_cursor"] is None


@pytest.mark.parametrize("cursor", ["yesterday~a", "-1.0~a", "12.5", "12.5~"])
def test_a_cursor_not_from_a_page_is_a_422(client, shots, cursor):
    answer = client.get("/shots", params={"cursor": cursor})
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["query", "cursor"]
    assert shots.finds == []


def test_a_game_with_no_stored_shot_is_a_404_naming_it(client):
    answer = client.get("/games/21800999")
    assert answer.status_code == 404
    assert answer.json()["detail"] == "no stored shots for game 21800999"


def test_a_game_lists_its_shots_in_game_order_with_field_goal_points_by_team(client, shots):
    celtics = {"team_id": 1610612738, "team_name": "Boston Celtics"}
    shots.docs = [
        _shot("e4", game_event_id=40, outcome=None, p_champion=0.5, shot_value=2, **celtics),
        _shot("e2", game_event_id=20, outcome=0, p_champion=0.5, shot_value=2),
        _shot("e3", game_event_id=30, outcome=1, p_champion=0.6, shot_value=2, **celtics),
        _shot("e1", game_event_id=10, outcome=1, p_champion=0.4, shot_value=3),
    ]
    game = client.get("/games/21800500").json()
    assert [s["shot_id"] for s in game["shots"]] == ["e1", "e2", "e3", "e4"]
    summary = game["summary"]
    # Labelled: e1 (3 made, 0.4 x 3 = 1.2 expected), e2 (0 made, 0.5 x 2 = 1.0), e3 (2 made,
    # 0.6 x 2 = 1.2); e4 has no outcome yet.  5 points against 3.4 expected: +1.6.
    assert (summary["shots"], summary["labelled"], summary["made"]) == (4, 3, 2)
    assert summary["field_goal_points"] == 5
    assert summary["expected_field_goal_points"] == pytest.approx(3.4)
    assert summary["points_above_expectation"] == pytest.approx(1.6)
    teams = {t["team_name"]: t for t in summary["teams"]}
    # Lakers: e1 and e2, 3 against 2.2; Celtics: e3 (e4 unlabelled), 2 against 1.2.
    assert teams["Los Angeles Lakers"]["points_above_expectation"] == pytest.approx(0.8)
    assert teams["Boston Celtics"]["points_above_expectation"] == pytest.approx(0.8)
    assert teams["Boston Celtics"]["shots"] == 2 and teams["Boston Celtics"]["labelled"] == 1


def test_a_player_with_no_stored_shot_is_a_404_naming_him(client):
    answer = client.get("/players/977")
    assert answer.status_code == 404
    assert answer.json()["detail"] == "no stored shots for player 977"


def test_a_player_is_named_by_his_latest_shot_and_summed_over_all(client, shots):
    shots.docs = [
        _shot(
            "a",
            scored_at=1.0,
            player_name="Kobe Bean Bryant",
            team_name="Old name",
            outcome=1,
            p_champion=0.5,
            shot_value=3,
        ),
        _shot(
            "b", scored_at=2.0, player_name="Kobe Bryant", outcome=0, p_champion=0.25, shot_value=2
        ),
    ]
    answer = client.get("/players/977").json()
    assert answer["player_name"] == "Kobe Bryant"
    assert answer["team_name"] == "Los Angeles Lakers"
    # 3 made of 1.5 + 0.5 = 2.0 expected: +1.0.
    assert answer["points"] == 3 and answer["expected_points"] == pytest.approx(2.0)
    assert answer["points_above_expectation"] == pytest.approx(1.0)
    assert answer["form_history"]["shots"] == 0  # no shot with the form fields is stored


def test_the_leaderboard_narrows_to_a_team_and_the_tighter_dates(client, shots):
    answer = client.get(
        "/leaderboard",
        params={"team": "Lakers", "season": "2018-19", "since": 20190101, "replay_id": "r1"},
    )
    assert answer.status_code == 200
    match = shots.pipelines[0][0]["$match"]
    assert match["team_id"] == LAKERS and match["replay_id"] == "r1"
    assert match["game_date"] == {"$gte": 20190101, "$lte": 20190630}
    assert answer.json()["min_shots"] == 20 and answer.json()["prior_shots"] == 100


def test_a_leaderboard_over_no_dates_is_a_422(client):
    answer = client.get("/leaderboard", params={"since": 20190201, "until": 20190101})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["query", "until"]


def test_a_leaderboard_season_that_is_not_one_is_a_422_on_season(client):
    answer = client.get("/leaderboard", params={"season": "2018-20"})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["query", "season"]
