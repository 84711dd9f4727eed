"""row_to_shot: the one conversion every 22-column source shares."""

from __future__ import annotations

import re

import pytest

from parivision.rows import REQUIRED_COLUMNS, row_to_shot
from parivision.schemas import CSV_COLUMNS, Shot

HEADER = list(CSV_COLUMNS)
KOBE = (
    "29600027,102,977,Kobe Bryant,1610612747,Los Angeles Lakers,1,0,42,Jump Shot,2PT Field Goal,"
    "Mid-Range,Left Side Center(LC),16-24 ft.,18,-140,116,0,19961103,LAL,MIN,Regular Season"
)
SHOT_FIELDS = set(Shot.model_fields) - {"replay_id", "produced_at"}


def record(**changes: str | object) -> dict[str, object]:
    row: dict[str, object] = dict(zip(HEADER, KOBE.split(","), strict=True))
    row.update(changes)
    return row


def test_converts_a_real_row_to_exactly_the_shot_fields_with_python_types() -> None:
    shot, made = row_to_shot(record())

    assert set(shot) == SHOT_FIELDS
    assert made == 0
    assert shot["shot_id"] == "29600027-102"
    assert shot["game_event_id"] == 102
    assert (shot["x"], shot["y"], shot["shot_distance"]) == (-140, 116, 18)
    assert (shot["period"], shot["minutes_remaining"], shot["seconds_remaining"]) == (1, 0, 42)
    assert shot["game_date"] == 19961103 and shot["team_id"] == 1610612747
    assert shot["shot_zone_area"] == "Left Side Center(LC)" and shot["home_team"] == "LAL"
    for field in ("game_id", "player_id", "team_id", "period", "x", "y", "game_date"):
        assert type(shot[field]) is int, field
    Shot(**shot)  # and the stream's model accepts it as is


def test_empty_event_id_gives_none_and_a_stable_hash_id() -> None:
    shot, _ = row_to_shot(record(**{"Game Event ID": ""}))
    again, _ = row_to_shot(record(**{"Game Event ID": ""}))
    moved, _ = row_to_shot(record(**{"Game Event ID": "", "X Location": "-139"}))

    assert shot["game_event_id"] is None
    assert shot["shot_id"].startswith("29600027-h")
    assert shot["shot_id"] == again["shot_id"]
    assert moved["shot_id"] != shot["shot_id"]


def test_string_and_json_number_records_give_the_same_shot() -> None:
    typed = record(**{"X Location": -140, "Game ID": 29600027, "Game Event ID": 102.0})
    assert row_to_shot(typed) == row_to_shot(record())


def test_whole_floats_are_integers_because_pandas_writes_ints_that_way() -> None:
    shot, made = row_to_shot(record(**{"Y Location": "116.0", "Shot Made Flag": "1.0"}))
    assert (shot["y"], made) == (116, 1)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"X Location": "abc"}, "X Location: 'abc' is not an integer"),
        ({"Period": ""}, "Period: empty"),
        ({"Y Location": "11.5"}, "Y Location: '11.5' is not an integer"),
        ({"Y Location": 11.5}, "Y Location: 11.5 is not an integer"),
        ({"Shot Made Flag": "2"}, "Shot Made Flag: '2' is not 0 or 1"),
        ({"Shot Made Flag": True}, "Shot Made Flag: True is not an integer"),
        ({"Game Event ID": "x7"}, "Game Event ID: 'x7' is not an integer"),
        ({"Game ID": None}, "Game ID: empty"),
    ],
)
def test_bad_values_raise_a_reason_naming_the_column(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        row_to_shot(record(**changes))


@pytest.mark.parametrize("column", ["Game ID", "Action Type", "Game Event ID", "Season Type"])
def test_a_missing_column_is_named(column: str) -> None:
    row = record()
    del row[column]
    with pytest.raises(ValueError, match=f"missing column '{column}'"):
        row_to_shot(row)


def test_required_columns_are_the_22_of_the_schema() -> None:
    assert len(REQUIRED_COLUMNS) == 22 and set(REQUIRED_COLUMNS) == set(CSV_COLUMNS)
