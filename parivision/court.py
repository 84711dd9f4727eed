"""The zones stats.nba.com assigns to a shot location, as a function of X/Y alone.

Coordinates are shot-chart units: tenths of a foot, hoop at (0, 0), X negative on the left.
The thresholds were read off the real data and reproduce its Shot Zone Basic, Area and Range
and its Shot Distance on every one of the 228,009 rows of ``nba_shots.csv`` that have a
location, and on the first 300,000 rows of the bulk 2003-2018 file; Shot Type matches on
99.9% (the rest are scorer's calls on the line).  Where the data and the usual rules of thumb
differ, the data wins: the restricted area is r < 40 (a shot at exactly 4 ft is In The
Paint), the corner three ends at y = 87, and Shot Distance is truncated, not rounded, to
whole feet.
"""

from __future__ import annotations

import math
from typing import NamedTuple

__all__ = ["THREE_POINT_ZONES", "Zone", "zone_for"]

THREE_POINT_ZONES = frozenset({"Above the Break 3", "Left Corner 3", "Right Corner 3", "Backcourt"})

_ARC = 237.5  # the 23.75 ft three-point arc above the break
_HALF_COURT_Y = 420  # first Y counted as Backcourt (the line is 41.75 ft from the hoop)
_BACK_COURT_AREA_Y = 398  # Area and Range say "back court" a little before Basic does
_CORNER_X = 220  # the 22 ft corner three
_CORNER_MAX_Y = 87  # where the straight corner line meets the arc
_PAINT_HALF_WIDTH = 80  # the 16 ft lane
_PAINT_MAX_Y = 138  # the free-throw line, 19 ft from the baseline


class Zone(NamedTuple):
    """The location fields of a shot, as the NBA would record them."""

    shot_zone_basic: str
    shot_zone_area: str
    shot_zone_range: str
    shot_type: str
    shot_distance: int


def zone_for(x: int, y: int) -> Zone:
    """Zones, shot type and distance for a location.

    Args:
        x: Shot-chart X in tenths of a foot (negative is the left side).
        y: Shot-chart Y in tenths of a foot (0 is the hoop, 420 the half-court line).

    Returns:
        The :class:`Zone`.

    Example:
        >>> zone_for(-233, 43)
        Zone(shot_zone_basic='Left Corner 3', shot_zone_area='Left Side(L)', \
shot_zone_range='24+ ft.', shot_type='3PT Field Goal', shot_distance=23)
        >>> zone_for(-140, 116).shot_zone_area
        'Left Side Center(LC)'
    """
    r = math.hypot(x, y)
    angle = math.degrees(math.atan2(x, y))  # 0 straight out from the hoop, negative to the left
    basic = _basic(x, y, r)
    three = basic in THREE_POINT_ZONES
    if y >= _BACK_COURT_AREA_Y:
        area, zone_range = "Back Court(BC)", "Back Court Shot"
    else:
        area = _area(basic, r, angle)
        if r <= 80:
            zone_range = "Less Than 8 ft."
        elif r <= 160:
            zone_range = "8-16 ft."
        else:
            # Corner threes (from 22 ft) are 24+ too: the range follows the shot's value.
            zone_range = "24+ ft." if three else "16-24 ft."
    shot_type = "3PT Field Goal" if three else "2PT Field Goal"
    return Zone(basic, area, zone_range, shot_type, int(r // 10))


def _basic(x: int, y: int, r: float) -> str:
    if y >= _HALF_COURT_Y:
        return "Backcourt"
    if r < 40:
        return "Restricted Area"
    if abs(x) <= _PAINT_HALF_WIDTH and y <= _PAINT_MAX_Y:
        return "In The Paint (Non-RA)"
    if y <= _CORNER_MAX_Y and x <= -_CORNER_X:
        return "Left Corner 3"
    if y <= _CORNER_MAX_Y and x >= _CORNER_X:
        return "Right Corner 3"
    if y > _CORNER_MAX_Y and r > _ARC:
        return "Above the Break 3"
    return "Mid-Range"


def _area(basic: str, r: float, angle: float) -> str:
    if basic == "Restricted Area":
        return "Center(C)"
    if basic == "Left Corner 3":
        return "Left Side(L)"
    if basic == "Right Corner 3":
        return "Right Side(R)"
    if basic == "Above the Break 3":
        return _by_angle(angle, (-18.0, 18.0), ("Left Side Center(LC)", "Right Side Center(RC)"))
    if basic == "In The Paint (Non-RA)" and r <= 80:
        return "Center(C)"
    if r <= 160:  # paint beyond 8 ft, and the 8-16 ft mid-range: three sectors
        return _by_angle(angle, (-30.0, 30.0), ("Left Side(L)", "Right Side(R)"))
    # Long mid-range: five sectors.
    if angle < -54:
        return "Left Side(L)"
    if angle > 54:
        return "Right Side(R)"
    return _by_angle(angle, (-18.0, 18.0), ("Left Side Center(LC)", "Right Side Center(RC)"))


def _by_angle(angle: float, bounds: tuple[float, float], sides: tuple[str, str]) -> str:
    """Left side below ``bounds[0]``, right side above ``bounds[1]``, Center between."""
    if angle < bounds[0]:
        return sides[0]
    if angle > bounds[1]:
        return sides[1]
    return "Center(C)"
