"""Shots as clients send them: a VirtualBets record or the project's schema in, the Shot fields
out, and every problem a 422 item located at the field the client sent."""

from __future__ import annotations

import re

import pytest

from consumers.api.shots_in import BadShot, parse_shot, range_pattern, shot_input_schema
from parivision.schemas import MAX_ID

RECORD = {  # a three from the top of the key, as the original VirtualBets API served it
    "Game ID": "21800500",
    "Game Event ID": "7",
    "Player ID": "977",
    "Player Name": "Kobe Bryant",
    "Team ID": "1610612747",
    "Team Name": "Los Angeles Lakers",
    "Period": "1",
    "Minutes Remaining": "6",
    "Seconds Remaining": "0",
    "Action Type": "Jump Shot",
    "Shot Type": "3PT Field Goal",
    "Shot Zone Basic": "Above the Break 3",
    "Shot Zone Area": "Center(C)",
    "Shot Zone Range": "24+ ft.",
    "Shot Distance": "26",
    "X Location": "0",
    "Y Location": "260",
    "Shot Made Flag": "1",
    "Game Date": "20190110",
    "Home Team": "LAL",
    "Away Team": "BOS",
    "Season Type": "Regular Season",
}
SHOT = {
    "game_id": 21800500,
    "game_event_id": 7,
    "player_id": 977,
    "period": 1,
    "minutes_remaining": 6,
    "seconds_remaining": 0,
    "action_type": "Jump Shot",
    "shot_type": "3PT Field Goal",
    "shot_zone_basic": "Above the Break 3",
    "shot_zone_area": "Center(C)",
    "shot_zone_range": "24+ ft.",
    "shot_distance": 26,
    "x": 0,
    "y": 260,
    "game_date": 20190110,
}


def _errors(raw, loc=("body",)):
    with pytest.raises(BadShot) as raised:
        parse_shot(raw, loc)
    return raised.value.errors


def test_a_virtualbets_record_of_text_becomes_a_typed_shot_with_its_event_id():
    shot = parse_shot(RECORD)
    assert shot["shot_id"] == "21800500-7"
    assert (shot["game_id"], shot["player_id"], shot["x"], shot["y"]) == (21800500, 977, 0, 260)
    assert shot["team_name"] == "Los Angeles Lakers" and shot["season_type"] == "Regular Season"
    assert "made" not in shot  # the outcome is never an input


def test_the_made_flag_of_a_record_is_ignored_whatever_it_holds():
    assert parse_shot({**RECORD, "Shot Made Flag": "not a flag"}) == parse_shot(RECORD)


def test_a_shot_in_the_project_schema_keeps_a_given_id():
    assert parse_shot({**SHOT, "shot_id": "mine"})["shot_id"] == "mine"


@pytest.mark.parametrize("given", [None, "", "   "])
def test_a_shot_without_an_id_gets_the_game_and_event_id(given):
    assert parse_shot({**SHOT, "shot_id": given})["shot_id"] == "21800500-7"


def test_a_shot_that_is_not_an_object_is_refused_as_such():
    assert _errors([1, 2]) == [
        {"loc": ["body"], "msg": "a shot is a JSON object", "type": "model_attributes_type"}
    ]


def test_a_record_s_problem_is_located_at_its_column_name_not_the_field_name():
    (error,) = _errors({**RECORD, "Period": "13"})
    assert error["loc"] == ["body", "Period"] and error["type"] == "less_than_equal"


def test_a_record_value_that_is_no_number_names_its_column_and_the_value():
    (error,) = _errors({**RECORD, "Period": "x"}, ("body", "shots", 3))
    assert error["loc"] == ["body", "shots", 3, "Period"]
    assert error["msg"] == "Period: 'x' is not an integer"


def test_a_record_missing_a_column_names_the_column():
    record = {k: v for k, v in RECORD.items() if k != "Player ID"}
    (error,) = _errors(record)
    assert error["loc"] == ["body", "Player ID"] and "missing column" in error["msg"]


def test_a_clock_the_period_does_not_have_is_refused_at_the_seconds():
    (error,) = _errors({**RECORD, "Minutes Remaining": "12", "Seconds Remaining": "30"})
    assert error["loc"] == ["body", "Seconds Remaining"]
    assert error["msg"] == "12:30 left is not on the clock of period 1 (12 minutes)"


def test_an_overtime_has_five_minutes():
    (error,) = _errors({**SHOT, "period": 5, "minutes_remaining": 7})
    assert error["loc"] == ["body", "minutes_remaining"] and error["type"] == "clock"


def test_every_problem_of_a_shot_is_reported_not_only_the_first():
    errors = _errors({**SHOT, "x": 400, "y": -100, "shot_type": "4PT"})
    assert sorted(e["loc"][-1] for e in errors) == ["shot_type", "x", "y"]


def test_a_boolean_is_no_player_id():
    (error,) = _errors({**SHOT, "player_id": True})
    assert error["loc"] == ["body", "player_id"]


@pytest.mark.parametrize(("low", "high"), [(-52, 940), (-250, 250), (0, 59), (1, 10), (5, 5)])
def test_a_range_pattern_matches_exactly_the_integers_of_the_range(low, high):
    pattern = re.compile(range_pattern(low, high))
    for n in range(low - 120, high + 120):
        assert bool(pattern.fullmatch(str(n))) == (low <= n <= high), n


def test_an_id_pattern_takes_up_to_18_digits_and_no_leading_zero():
    pattern = re.compile(range_pattern(1, MAX_ID))
    assert pattern.match("21800500") and pattern.match("9" * 18)
    assert not pattern.match("0") and not pattern.match("07") and not pattern.match("1" * 19)


def test_the_input_schema_offers_both_layouts_and_tells_them_apart():
    shot, record = shot_input_schema()["oneOf"]
    assert "shot_id" not in shot["required"] and "player_id" in shot["required"]
    assert shot["propertyNames"] == {"not": {"enum": list(RECORD)}}
    # A record needs every column but the event id and the outcome.
    assert set(record["required"]) == set(RECORD) - {"Game Event ID", "Shot Made Flag"}
