import math

import numpy as np
import pandas as pd
import pytest

from models.features import FEATURE_NAMES, build_features, columns_from_records, feature_dict


def _shot(**overrides):
    shot = {
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
    stream = np.vstack(
        [
            build_features(columns_from_records(chunk))
            for chunk in np.array_split(np.array(sample.to_dict("records"), dtype=object), 7)
        ]
    )
    np.testing.assert_array_equal(batch, stream)


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
