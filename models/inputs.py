"""What the model is asked, said out loud: inputs it would misread are priced a stated way.

A shot can pass :class:`parivision.schemas.Shot` (right types, on the court) and still say
something the champion was never trained on.  Three such things moved prices silently:

- an ``action_type`` with none of the words the features read (:data:`models.features.
  ACTION_WORDS`): every action flag is 0, a combination no real shot has (p 0.240 → 0.766 for
  one layup).  It is priced as the action the NBA records most from that distance, ``Layup
  Shot`` inside 4 ft, ``Jump Shot`` beyond;
- zones that contradict X/Y (a "three" from under the hoop).  The NBA derives its zones from
  the location: :func:`parivision.court.zone_for` gives the recorded basic zone, area and range
  for all 232,410 shots of ``nba_shots.csv`` and a 100,000-shot sample of the bulk file.  So
  the location wins: the shot is priced with the zones at X/Y;
- a shot type a foot clear of the three-point line on the wrong side (a "3PT" from inside
  21 ft, a "2PT" from beyond 25 ft): priced as the type there.  Nearer the line the type is
  left as sent: 0.1% of real shots sit on it, where the zone and the recorded type disagree;
  4 of the 232,410 in ``nba_shots.csv`` are clear of it (one "3PT" at the rim).

A season type other than the NBA's is priced as the one its game id says (``00 2 ..`` regular
season, ``00 4 ..`` playoffs).  Each replacement is one line in ``warnings``, the same on the
REST answer, the batch answer's item, the stream's scored record and the page.

Example:
    >>> shot = {"x": 0, "y": 0, "game_id": 21800001, "action_type": "Moonball",
    ...         "shot_zone_basic": "Above the Break 3", "shot_zone_area": "Center(C)",
    ...         "shot_zone_range": "24+ ft.", "shot_distance": 0,
    ...         "shot_type": "3PT Field Goal", "season_type": "Regular Season"}
    >>> priced, warnings = as_priced(shot)
    >>> priced["action_type"], priced["shot_zone_basic"], priced["shot_zone_range"]
    ('Layup Shot', 'Restricted Area', 'Less Than 8 ft.')
    >>> priced["shot_type"]
    '2PT Field Goal'
    >>> len(warnings)
    4
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from models.features import action_words
from parivision.court import zone_for

__all__ = ["SEASON_TYPES", "as_priced", "generic_action", "season_type_for"]

# The NBA's season types by the third digit of the 10-digit game id.
SEASON_TYPES = {1: "Pre Season", 2: "Regular Season", 3: "All Star", 4: "Playoffs", 5: "PlayIn"}
_ZONES = ("shot_zone_basic", "shot_zone_area", "shot_zone_range")
_CLOSE_FT = 3  # the recorded distance and the one from X/Y agree within this on every real shot
# A make is worth 2 inside the arc (22 ft in the corners, 23.75 ft above the break) and 3 beyond.
# Real shots cross the line by scorekeeping near it (202 of 232,410 disagree with the zone at
# X/Y, all but four within a foot or so of the line): only a type a foot clear of the line
# on the wrong side contradicts X/Y.
_TWO_INSIDE_FT, _THREE_BEYOND_FT = 21.0, 25.0


def season_type_for(game_id: int, default: str = "Regular Season") -> str:
    """The season type a game id says (``21800001`` is 0021800001: regular season).

    Example:
        >>> season_type_for(21800001), season_type_for(41800101)
        ('Regular Season', 'Playoffs')
    """
    return SEASON_TYPES.get(int(game_id) // 10_000_000, default)


def generic_action(distance_ft: int) -> str:
    """The action priced when none the model can read is known: ``Layup Shot`` inside 4 ft,
    ``Jump Shot`` beyond."""
    return "Layup Shot" if distance_ft < 4 else "Jump Shot"


def as_priced(shot: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The shot as the champion prices it, and one warning per field replaced (none: as sent)."""
    priced = dict(shot)
    warnings: list[str] = []
    x, y = int(shot["x"]), int(shot["y"])
    at = zone_for(x, y)
    for field in _ZONES:
        given, there = shot.get(field), getattr(at, field)
        if given != there:
            warnings.append(
                f"{field} {given!r} contradicts X/Y ({x}, {y}): priced as {there!r}, the zone there"
            )
            priced[field] = there
    distance = shot.get("shot_distance")
    if isinstance(distance, int) and abs(distance - at.shot_distance) > _CLOSE_FT:
        warnings.append(
            f"shot_distance {distance} ft contradicts X/Y ({x}, {y}): priced as "
            f"{at.shot_distance} ft, the distance there"
        )
        priced["shot_distance"] = at.shot_distance
    feet = math.hypot(x, y) / 10
    clear = "2PT Field Goal" if feet < _TWO_INSIDE_FT else None
    clear = "3PT Field Goal" if feet > _THREE_BEYOND_FT else clear
    if clear is not None and shot.get("shot_type") != clear:
        warnings.append(
            f"shot_type {str(shot.get('shot_type'))[:80]!r} contradicts X/Y ({x}, {y}), "
            f"{feet:.1f} ft from the hoop: priced as {clear!r}"
        )
        priced["shot_type"] = clear
    action = shot.get("action_type")
    if not any(action_words(str(action or ""))):
        generic = generic_action(priced["shot_distance"])
        warnings.append(
            f"action_type {str(action)[:80]!r} is not one the model knows (none of its words): "
            f"priced as {generic!r}"
        )
        priced["action_type"] = generic
    season = shot.get("season_type")
    if season not in SEASON_TYPES.values():
        said = season_type_for(shot["game_id"])
        warnings.append(
            f"season_type {str(season)[:80]!r} is not the NBA's: priced as {said!r}, "
            f"from the game id"
        )
        priced["season_type"] = said
    return priced, warnings
