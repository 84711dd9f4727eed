import json

import pytest

from streams.validate import InvalidRecord, parse_attempt, parse_outcome
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
        (json.dumps({**GOOD, "produced_at": False}).encode(), "produced_at"),
        (json.dumps({**GOOD, "action_type": ["Jump Shot"]}).encode(), "action_type"),
        (json.dumps({**GOOD, "period": 5, "minutes_remaining": 8}).encode(), "minutes_remaining"),
        (json.dumps({**GOOD, "minutes_remaining": 12, "seconds_remaining": 1}).encode(), "12:01"),
    ],
)
def test_bad_attempts_say_why(raw, expected):
    with pytest.raises(InvalidRecord) as error:
        parse_attempt(raw)
    assert expected in str(error.value)


def test_a_good_attempt_carries_no_warnings():
    assert "warnings" not in parse_attempt(json.dumps(GOOD).encode())


def test_what_the_model_would_misread_is_replaced_and_said():
    """The stream prices an unknown action and zones that contradict X/Y the way the API does
    (models.inputs), and the scored record says what it replaced."""
    odd = {**GOOD, "x": 0, "y": 0, "action_type": "Moonball", "shot_zone_basic": "Mid-Range"}
    shot = parse_attempt(json.dumps(odd).encode())
    assert shot["shot_zone_basic"] == "Restricted Area" and shot["action_type"] == "Layup Shot"
    assert any("'Mid-Range'" in w for w in shot["warnings"])
    assert any("'Moonball'" in w for w in shot["warnings"])


def test_outcome_must_be_zero_or_one():
    assert (
        parse_outcome(b'{"shot_id": "1-1", "game_id": 1, "player_id": 7, "made": 1}')["made"] == 1
    )
    with pytest.raises(InvalidRecord, match="made"):
        parse_outcome(b'{"shot_id": "1-1", "game_id": 1, "player_id": 7, "made": 2}')


def test_an_outcome_must_name_its_player():
    # Both input topics are keyed by player, and the outcome updates that player's form.
    with pytest.raises(InvalidRecord, match="player_id"):
        parse_outcome(b'{"shot_id": "1-1", "game_id": 1, "made": 1}')


# -- values that are valid JSON but not a shot ------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (json.dumps({**GOOD, "x": float("nan")}).encode(), "x: Input should be a finite number"),
        (json.dumps({**GOOD, "produced_at": float("nan")}).encode(), "produced_at: Input should"),
        (json.dumps({**GOOD, "produced_at": float("-inf")}).encode(), "produced_at: Input should"),
        (json.dumps({**GOOD, "produced_at": 1e30}).encode(), "produced_at: Input should be less"),
        (json.dumps({**GOOD, "game_id": 1e30}).encode(), "game_id"),
        (json.dumps({**GOOD, "x": 1e30}).encode(), "x:"),
        (json.dumps({**GOOD, "x": True}).encode(), "x: Input should be a valid integer, not a"),
        (json.dumps({**GOOD, "player_name": "a" * 200_000}).encode(), "player_name: String"),
        (json.dumps({**GOOD, "action_type": "é" * 200_000}).encode(), "action_type: String"),
        (json.dumps({**GOOD, "replay_id": "r" * 200_000}).encode(), "replay_id: String"),
        (json.dumps({**GOOD, "team_name": {"a": [[[]]]}}).encode(), "team_name: Input should"),
        (b"[" * 10_000 + b"]" * 10_000, "not valid JSON: "),
    ],
)
def test_out_of_range_values_are_refused_naming_the_field(raw, expected):
    with pytest.raises(InvalidRecord) as error:
        parse_attempt(raw)
    assert expected in str(error.value)
    assert error.value.code in {"schema", "invalid_json"}


def test_an_outcome_with_a_boolean_or_an_endless_clock_is_refused():
    outcome = {"shot_id": "1-1", "game_id": 1, "player_id": 7, "made": 1}
    with pytest.raises(InvalidRecord, match="made: Input should be a valid integer, not a bool"):
        parse_outcome(json.dumps({**outcome, "made": True}).encode())
    with pytest.raises(InvalidRecord, match="produced_at: Input should be a finite number"):
        parse_outcome(json.dumps({**outcome, "produced_at": float("inf")}).encode())


# -- the original VirtualBets layout sent straight to a topic ----------------------------------


def virtualbets_record(shot: dict, made: int) -> dict:
    """``shot`` as the original VirtualBets API served it: the 22 column names, string values."""
    from parivision.schemas import CSV_COLUMNS

    values = {**shot, "made": made}
    return {
        column: "" if values.get(field) is None else str(values.get(field, ""))
        for column, field in CSV_COLUMNS.items()
    }


# Curry's shot with every column the original API served filled in.
FULL = {
    **GOOD,
    "team_id": 1610612744,
    "team_name": "Golden State Warriors",
    "home_team": "GSW",
    "away_team": "OKC",
    "season_type": "Regular Season",
}


def test_a_virtualbets_record_on_attempts_is_dead_lettered_naming_the_schema_and_the_fix():
    record = virtualbets_record(FULL, made=1)
    with pytest.raises(InvalidRecord) as error:
        parse_attempt(json.dumps(record).encode())
    reason = str(error.value)
    assert error.value.code == "virtualbets_layout"
    assert "VirtualBets 22-column layout ('Game ID', 'Game Event ID', 'Player ID', ...)" in reason
    # The id the replay would give it, so a person can find the shot.
    assert "shot 21800001-7;" in reason
    assert "shots.attempts expects the Shot schema (schemas/shots.attempts.schema.json)" in reason
    assert "parivision replay --data FILE.jsonl" in reason


def test_a_virtualbets_record_on_outcomes_names_the_outcome_schema():
    with pytest.raises(InvalidRecord) as error:
        parse_outcome(json.dumps(virtualbets_record(FULL, made=0)).encode())
    assert error.value.code == "virtualbets_layout"
    assert "shots.outcomes expects the Outcome schema (schemas/shots.outcomes.schema.json)" in str(
        error.value
    )


def test_a_broken_virtualbets_record_is_still_named_as_one():
    # Typed values, a missing column and an unparseable id: no shot id, the same advice.
    record = {"Game ID": {"nested": []}, "Player Name": 7, "X Location": 1e30}
    with pytest.raises(InvalidRecord) as error:
        parse_attempt(json.dumps(record).encode())
    assert error.value.code == "virtualbets_layout"
    assert "shot " not in str(error.value).split(";")[0]


def test_a_shot_that_also_carries_virtualbets_columns_is_judged_as_a_shot():
    # The Shot model ignores keys it does not know: this one is valid, and one that is not
    # gets the Shot schema's own reason.
    extra = {"Game ID": "21800001", "Shot Made Flag": "1"}
    assert parse_attempt(json.dumps({**GOOD, **extra}).encode())["shot_id"] == "21800001-7"
    with pytest.raises(InvalidRecord) as error:
        parse_attempt(json.dumps({**GOOD, **extra, "x": 999}).encode())
    assert error.value.code == "schema" and "x: Input should be less than" in str(error.value)


# -- whatever comes in, a bounded reason code and a DLQ record Kafka takes ----------------------

CODES = {"empty", "invalid_json", "schema", "virtualbets_layout"}


def test_any_bytes_are_a_shot_or_an_invalid_record_with_a_known_code():
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
    values = st.recursive(
        scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner)
    )
    keys = st.sampled_from([*GOOD, "Game ID", "Shot Made Flag", "produced_at", "other"])
    mutated = st.dictionaries(keys, values, max_size=6).map(lambda d: json.dumps({**GOOD, **d}))
    messages = st.binary(max_size=200) | mutated.map(str.encode)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(messages)
    def check(raw):
        for parse in (parse_attempt, parse_outcome):
            try:
                parse(raw)
            except InvalidRecord as error:
                assert str(error) and error.code in CODES

    check()
