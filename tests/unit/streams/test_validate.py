import base64
import json

import pytest

from streams.validate import InvalidRecord, dead_letter, parse_attempt, parse_outcome
from tests.samples import GOOD_SHOT

GOOD = GOOD_SHOT


def test_good_attempt_round_trips():
    shot = parse_attempt(json.dumps(GOOD).encode())
    assert shot["shot_id"] == "21800001-7" and shot["x"] == 10


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty message"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "player_id"}).encode(), "player_id"),
        (json.dumps({**GOOD, "x": "left"}).encode(), "x"),
        (json.dumps({**GOOD, "x": 999}).encode(), "x: Input should be less than or equal to 250"),
        (json.dumps({**GOOD, "y": -400}).encode(), "y:"),
        (json.dumps({**GOOD, "period": 0}).encode(), "period"),
        (json.dumps({**GOOD, "shot_type": "4PT Field Goal"}).encode(), "shot_type"),
        (json.dumps([1, 2, 3]).encode(), "record"),
    ],
)
def test_bad_attempts_say_why(raw, expected):
    with pytest.raises(InvalidRecord) as error:
        parse_attempt(raw)
    assert expected in str(error.value)


def test_outcome_must_be_zero_or_one():
    assert (
        parse_outcome(b'{"shot_id": "1-1", "game_id": 1, "player_id": 7, "made": 1}')["made"] == 1
    )
    with pytest.raises(InvalidRecord, match="made"):
        parse_outcome(b'{"shot_id": "1-1", "game_id": 1, "player_id": 7, "made": 2}')


def test_dead_letter_keeps_the_original_bytes_and_reason():
    raw = b"\xff\xfe not utf-8"
    record = json.loads(
        dead_letter(
            raw,
            "not valid JSON",
            stage="validate-attempt",
            topic="shots.attempts",
            partition=2,
            offset=41,
            key=b"123",
        )
    )
    assert base64.b64decode(record["original_b64"]) == raw
    assert record["reason"] == "not valid JSON"
    assert (record["source_topic"], record["source_partition"], record["source_offset"]) == (
        "shots.attempts",
        2,
        41,
    )
    assert record["original_text"] is None and record["key"] == "123"


def test_an_outcome_must_name_its_player():
    # Both input topics are keyed by player, and the outcome updates that player's form.
    with pytest.raises(InvalidRecord, match="player_id"):
        parse_outcome(b'{"shot_id": "1-1", "game_id": 1, "made": 1}')
