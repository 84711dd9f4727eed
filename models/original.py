"""The original PariVision features, kept only as a baseline to measure ours against.

Never used for serving.  The original app turned a shot into seven numbers (the column names are
its own, as in ``virtualbets_sample_1000_silver.csv``): ``Player ID`` as a plain number, ``X
Location``, ``Y Location``, ``Total_Seconds_Remaining`` (minutes * 60 + seconds),
``Shot_Type_Encoded`` (2 or 3), ``Shot_Distance_Meters`` (feet * 0.3048) and
``Shot_Zone_Combined``, one integer code for the zone.

Its code for ``Shot_Zone_Combined`` was not shipped; :func:`zone_combined` is reconstructed from
the 1,000-row sample and its silver version, and reproduces all 1,000 codes.  The code depends on
``Shot Zone Basic`` alone, except that Mid-Range is split by ``Shot Zone Area``: the left side (L,
LC) is 3, centre and right (C, RC, R) are 4.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

ORIGINAL_FEATURE_NAMES = (
    "Player ID",
    "X Location",
    "Y Location",
    "Total_Seconds_Remaining",
    "Shot_Type_Encoded",
    "Shot_Distance_Meters",
    "Shot_Zone_Combined",
)

_ZONE_CODES = {
    "Restricted Area": 1,
    "In The Paint (Non-RA)": 2,
    "Mid-Range": 4,  # 3 on the left side, see zone_combined
    "Above the Break 3": 5,
    "Left Corner 3": 6,
    "Right Corner 3": 6,
    "Backcourt": 7,
}
_LEFT_AREAS = {"Left Side(L)", "Left Side Center(LC)"}


def zone_combined(zone_basic: str, zone_area: str) -> float:
    """The original ``Shot_Zone_Combined`` code of a zone (NaN for a zone it did not know).

    Example:
        >>> zone_combined("Mid-Range", "Left Side(L)"), zone_combined("Mid-Range", "Center(C)")
        (3.0, 4.0)
    """
    code = _ZONE_CODES.get(zone_basic)
    if code is None:
        return float("nan")
    if zone_basic == "Mid-Range" and zone_area in _LEFT_AREAS:
        return 3.0
    return float(code)


def original_features(columns: Mapping[str, Any]) -> np.ndarray:
    """The original seven features, in :data:`ORIGINAL_FEATURE_NAMES` order.

    ``columns`` has :class:`parivision.schemas.Shot` field names, like the input of
    :func:`models.features.build_features` (plus ``player_id``).
    """
    minutes = np.asarray(columns["minutes_remaining"], dtype=np.float64)
    seconds = np.asarray(columns["seconds_remaining"], dtype=np.float64)
    shot_type = list(columns["shot_type"])
    zones = zip(columns["shot_zone_basic"], columns["shot_zone_area"], strict=True)
    return np.column_stack(
        [
            np.asarray(columns["player_id"], dtype=np.float64),
            np.asarray(columns["x"], dtype=np.float64),
            np.asarray(columns["y"], dtype=np.float64),
            minutes * 60.0 + seconds,
            np.fromiter((3.0 if s.startswith("3") else 2.0 for s in shot_type), np.float64),
            np.asarray(columns["shot_distance"], dtype=np.float64) * 0.3048,
            np.fromiter((zone_combined(b, a) for b, a in zones), np.float64),
        ]
    )
