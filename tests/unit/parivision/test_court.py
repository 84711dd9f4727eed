"""zone_for: the NBA's zone fields from X/Y, checked against every real located row."""

from __future__ import annotations

import pytest

from parivision.court import zone_for


def test_zones_match_every_real_row_with_a_location(real_summary) -> None:
    assert real_summary.located > 225_000
    mismatches = real_summary.zone_mismatches
    for field in ("shot_zone_basic", "shot_zone_area", "shot_zone_range", "shot_distance"):
        assert mismatches.get(field, 0) == 0, f"{field}: {mismatches.get(field)} rows differ"
    # Shot Type is the scorer's call at the line; the geometry agrees on 99.9%.
    assert mismatches.get("shot_type", 0) < 0.002 * real_summary.located


@pytest.mark.parametrize(
    ("x", "y", "basic", "area", "zone_range", "points", "distance"),
    [
        (0, 0, "Restricted Area", "Center(C)", "Less Than 8 ft.", 2, 0),
        (0, 39, "Restricted Area", "Center(C)", "Less Than 8 ft.", 2, 3),
        (0, 40, "In The Paint (Non-RA)", "Center(C)", "Less Than 8 ft.", 2, 4),
        (-221, 50, "Left Corner 3", "Left Side(L)", "24+ ft.", 3, 22),
        (221, 87, "Right Corner 3", "Right Side(R)", "24+ ft.", 3, 23),
        (219, 50, "Mid-Range", "Right Side(R)", "16-24 ft.", 2, 22),
        (221, 90, "Above the Break 3", "Right Side Center(RC)", "24+ ft.", 3, 23),
        (0, 237, "Mid-Range", "Center(C)", "16-24 ft.", 2, 23),
        (0, 238, "Above the Break 3", "Center(C)", "24+ ft.", 3, 23),
        (-100, 100, "Mid-Range", "Left Side(L)", "8-16 ft.", 2, 14),
        (-100, 200, "Mid-Range", "Left Side Center(LC)", "16-24 ft.", 2, 22),
        (0, 500, "Backcourt", "Back Court(BC)", "Back Court Shot", 3, 50),
    ],
)
def test_landmarks(x, y, basic, area, zone_range, points, distance) -> None:
    zone = zone_for(x, y)
    assert (zone.shot_zone_basic, zone.shot_zone_area, zone.shot_zone_range) == (
        basic, area, zone_range)  # fmt: skip
    assert zone.shot_type.startswith(str(points)) and zone.shot_distance == distance


def test_distance_is_truncated_like_the_nba_not_rounded() -> None:
    assert zone_for(0, 189).shot_distance == 18  # 18.9 ft
