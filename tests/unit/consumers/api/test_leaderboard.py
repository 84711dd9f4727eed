"""The points-above-expectation board: season dates, date ranges, shrinkage, ranking and the
minimum-attempts rule, each against a number worked by hand."""

from __future__ import annotations

import re

import pytest
from fastapi import HTTPException

from consumers.api import leaderboard
from consumers.api.leaderboard import board, date_range, rank, rate, season_dates
from tests.unit.consumers.api.conftest import FakeCollection


def _group(gid, attempts, points, expected, made=0, name=None):
    return {
        "_id": gid,
        "name": name or f"player {gid}",
        "team_name": "T",
        "attempts": attempts,
        "made": made,
        "field_goal_points": points,
        "expected_field_goal_points": expected,
    }


def test_a_season_runs_from_july_1_to_june_30_across_the_century():
    assert season_dates("2003-04") == (20030701, 20040630)
    assert season_dates(" 2099-00 ") == (20990701, 21000630)


@pytest.mark.parametrize("season", ["2018-20", "2018-2019", "18-19", "2018/19"])
def test_a_season_that_is_not_two_years_in_a_row_is_a_422_on_season(season):
    with pytest.raises(HTTPException) as raised:
        season_dates(season)
    assert raised.value.status_code == 422
    (problem,) = raised.value.detail
    assert problem["loc"] == ["query", "season"]
    assert "write it as 2018-19" in problem["msg"]


def test_the_schema_pattern_for_a_season_takes_the_same_seasons_as_the_server():
    pattern = re.compile(leaderboard.SEASON_PATTERN)
    assert pattern.match("2018-19") and pattern.match("1999-00")
    assert not pattern.match("2018-20") and not pattern.match("1999-01")


def test_no_season_and_no_dates_ask_for_no_date_condition():
    assert date_range(None, None, None) is None


def test_since_or_until_alone_is_an_open_range():
    assert date_range(None, 20190101, None) == {"$gte": 20190101}
    assert date_range(None, None, 20190101) == {"$lte": 20190101}


def test_a_season_and_dates_keep_the_tighter_of_each_end():
    # 2018-19 is 20180701..20190630; since 20190101 is later, until 20191231 is after the end.
    assert date_range("2018-19", 20190101, 20191231) == {"$gte": 20190101, "$lte": 20190630}


def test_dates_that_leave_nothing_are_a_422_naming_until_and_both_ends():
    with pytest.raises(HTTPException) as raised:
        date_range("2018-19", None, 20170101)
    (problem,) = raised.value.detail
    assert raised.value.status_code == 422 and problem["loc"] == ["query", "until"]
    assert "from 20180701 to 20170101" in problem["msg"]


def test_a_start_after_the_season_is_a_422_naming_since():
    with pytest.raises(HTTPException) as raised:
        date_range("2018-19", 20200101, None)
    assert raised.value.detail[0]["loc"] == ["query", "since"]


def test_a_row_is_shrunk_toward_zero_by_the_prior_shots():
    # 400 attempts, 820 points made against 800 expected: +20 points.
    # raw: 20 / 400 = 0.05 a shot (5.0 per 100); shrunk: 20 / (400 + 100) = 0.04 (4.0 per 100).
    row = rate(_group(7, 400, 820, 800.0, made=380), 100)
    assert row["points_above_expectation"] == pytest.approx(20.0)
    assert row["per_shot"] == pytest.approx(0.05)
    assert row["per_100"] == pytest.approx(5.0)
    assert row["shrunk_per_shot"] == pytest.approx(0.04)
    assert row["shrunk_per_100"] == pytest.approx(4.0)
    assert (row["id"], row["attempts"], row["made"]) == (7, 400, 380)


def test_without_a_prior_the_shrunk_value_is_the_raw_one():
    # -6 points over 30 shots: -0.2 a shot either way.
    row = rate(_group(1, 30, 24, 30.0), 0)
    assert row["shrunk_per_shot"] == pytest.approx(-0.2) == row["per_shot"]


def test_the_shrinkage_ranks_volume_above_a_lucky_few_shots():
    lucky = rate(_group("lucky", 30, 39, 30.0), 100)  # +9: 0.300 raw, 9 / 130 = 0.069 shrunk
    steady = rate(_group("steady", 2000, 2300, 2000.0), 100)  # +300: 0.150 raw, 300/2100 = 0.143
    assert [r["id"] for r in rank([lucky, steady], "best")] == ["steady", "lucky"]


def test_best_lists_the_highest_first_and_worst_the_lowest_first():
    rows = [rate(_group(i, 100, 200 + d, 200.0), 100) for i, d in ((1, 5), (2, -10), (3, 20))]
    assert [r["id"] for r in rank(rows, "best")] == [3, 1, 2]
    assert [r["id"] for r in rank(rows, "worst")] == [2, 1, 3]


def test_a_tie_goes_to_more_attempts_then_to_the_id():
    # All three are 0 above expectation: 0 shrunk.
    rows = [rate(_group(gid, n, 100, 100.0), 100) for gid, n in ((9, 50), (3, 80), (5, 80))]
    assert [r["id"] for r in rank(rows, "best")] == [3, 5, 9]


def test_rows_under_the_minimum_attempts_are_counted_not_listed():
    predictions = FakeCollection()
    predictions.groups = [
        _group(1, 19, 30, 20.0),  # one short of 20: left out however good
        _group(2, 20, 30, 25.0),  # +5 over 20 shots: 5 / 120 = 0.0417
        _group(3, 200, 400, 390.0),  # +10 over 200: 10 / 300 = 0.0333
        _group(None, 500, 1, 1.0),  # shots with no player id: not a row at all
    ]
    answer = board(
        predictions, by="player", query={}, prior_shots=100, min_shots=20, order="best", limit=10
    )
    assert [r["id"] for r in answer["rows"]] == [2, 3]
    assert answer["groups"] == 2 and answer["below_min_shots"] == 1
    assert answer["rows"][0]["shrunk_per_shot"] == pytest.approx(5 / 120)


def test_the_limit_cuts_the_ranked_rows_not_the_count():
    predictions = FakeCollection()
    predictions.groups = [_group(i, 50, 100 + i, 100.0) for i in range(1, 6)]
    answer = board(
        predictions, by="team", query={}, prior_shots=0, min_shots=1, order="best", limit=2
    )
    assert [r["id"] for r in answer["rows"]] == [5, 4] and answer["groups"] == 5


def test_only_labelled_priced_shots_of_the_query_are_summed_by_the_group_asked():
    predictions = FakeCollection()
    board(
        predictions,
        by="team",
        query={"game_id": 21800001},
        prior_shots=100,
        min_shots=20,
        order="best",
        limit=20,
    )
    (pipeline,) = predictions.pipelines
    assert pipeline[0]["$match"] == {
        "game_id": 21800001,
        "outcome": {"$ne": None},
        "shot_value": {"$gt": 0},
        "p_champion": {"$ne": None},
    }
    group = pipeline[1]["$group"]
    assert group["_id"] == "$team_id" and group["name"] == {"$last": "$team_name"}
    assert group["field_goal_points"] == {"$sum": {"$multiply": ["$outcome", "$shot_value"]}}
