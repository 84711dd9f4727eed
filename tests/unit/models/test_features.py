import math

import numpy as np
import pandas as pd
import pytest

from models.features import FEATURE_NAMES, build_features, columns_from_records, feature_dict
from models.form import player_form


def _shot(**overrides):
    shot = {
        "player_id": 977,
        "game_id": 29600027,
        "made": 0,
        "x": -140,
        "y": 116,
        "shot_distance": 18,
        "period": 1,
        "minutes_remaining": 0,
        "seconds_remaining": 42,
        "shot_type": "2PT Field Goal",
        "season_type": "Regular Season",
        "shot_zone_basic": "Mid-Range",
        "shot_zone_area": "Left Side Center(LC)",
        "shot_zone_range": "16-24 ft.",
        "action_type": "Driving Floating Bank Jump Shot",
    }
    shot.update(overrides)
    return shot


def _named(row):
    return dict(zip(FEATURE_NAMES, row, strict=True))


def test_values_follow_the_original_definitions_where_they_overlap():
    row = _named(build_features(columns_from_records([_shot()]))[0])
    assert row["distance_m"] == pytest.approx(18 * 0.3048)
    assert row["seconds_left_in_period"] == 42
    assert row["shot_value"] == 2
    assert row["coord_distance_ft"] == pytest.approx(math.hypot(140, 116) / 10)
    assert row["angle_deg"] < 0  # left side of the court
    for word in ("driving", "floating", "bank", "jump"):
        assert row[f"action_{word}"] == 1.0
    assert row["action_dunk"] == 0.0


def test_batch_frame_and_stream_records_give_identical_features(shots_frame):
    sample = shots_frame.iloc[:2000]
    batch = build_features(sample)
    form = player_form(sample)
    # The stream builds features per micro-batch from attempt records, with the form values
    # its table gave each shot.
    chunks = np.array_split(np.arange(len(sample)), 7)
    stream = np.vstack(
        [
            build_features(
                columns_from_records(sample.iloc[idx].drop(columns=["made"]).to_dict("records")),
                form=form[idx],
            )
            for idx in chunks
        ]
    )
    np.testing.assert_array_equal(batch, stream)


def test_player_form_comes_from_earlier_shots_only():
    first = _shot(made=1)
    second = _shot(made=0, seconds_remaining=20)
    third = _shot(made=1, minutes_remaining=0, seconds_remaining=5)
    rows = [_named(r) for r in build_features(pd.DataFrame([first, second, third]))]
    assert rows[0]["player_log_shots_before"] == 0 and math.isnan(rows[0]["prev_made_in_game"])
    assert rows[1]["prev_made_in_game"] == 1 and rows[1]["secs_since_prev_in_game"] == 22
    assert rows[2]["prev_made_in_game"] == 0 and rows[2]["game_made_before"] == 1
    assert rows[2]["game_shots_before"] == 2
    # A make raises the player's rate above the prior, a miss brings it back down.
    assert rows[1]["player_rate"] > rows[0]["player_rate"]
    assert rows[2]["player_rate"] < rows[1]["player_rate"]
    # Changing a shot's own outcome changes nothing about its own features.
    again = build_features(pd.DataFrame([first, second, {**third, "made": 0}]))
    assert _named(again[2]) == pytest.approx(rows[2], nan_ok=True)


def test_a_new_game_starts_the_in_game_form_again():
    rows = build_features(pd.DataFrame([_shot(made=1), _shot(game_id=29600031, made=1)]))
    second = _named(rows[1])
    assert second["game_shots_before"] == 0 and math.isnan(second["prev_made_in_game"])
    assert second["player_log_shots_before"] == pytest.approx(math.log(2))


def test_form_needs_outcomes_or_the_streams_values():
    with pytest.raises(ValueError, match="made"):
        build_features(columns_from_records([{k: v for k, v in _shot().items() if k != "made"}]))


def test_unknown_zone_is_missing_not_a_category():
    row = _named(build_features(columns_from_records([_shot(shot_zone_basic="Moon")]))[0])
    assert math.isnan(row["zone_basic"])
    assert "zone_basic" not in feature_dict(
        build_features(columns_from_records([_shot(shot_zone_basic="Moon")]))[0]
    )


def test_three_pointers_and_playoffs_are_flagged():
    frame = pd.DataFrame([_shot(shot_type="3PT Field Goal", season_type="Playoffs")])
    row = _named(build_features(frame)[0])
    assert row["shot_value"] == 3 and row["playoffs"] == 1


def test_empty_batch_has_the_right_width():
    assert build_features(columns_from_records([])).shape == (0, len(FEATURE_NAMES))
