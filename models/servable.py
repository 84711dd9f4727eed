"""Whether a loaded model can score the stream's shots: the checks a version passes before it
is served.

The registry cannot see everything that makes a version unservable.  Besides an artifact that is
gone or damaged (which fails the load itself), a model may have been fitted on other feature
columns, or answer something that is not a probability (raw scores, NaN).  The stream clips what
it serves into ``[P_MIN, P_MAX]``, so such a model would not fail: it would sell wrong odds.
:func:`models.registry.load_version` runs these checks on every version it loads, so the stream,
the API and a promotion refuse such a version with the reason.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from models.features import FEATURE_NAMES, build_features, columns_from_records

_SHOT_FIELDS = (
    "player_id",
    "game_id",
    "period",
    "minutes_remaining",
    "seconds_remaining",
    "action_type",
    "shot_type",
    "season_type",
    "shot_zone_basic",
    "shot_zone_area",
    "shot_zone_range",
    "shot_distance",
    "x",
    "y",
    "made",
)

# The kinds of shot the stream sees, in time order: a layup, a dunk, corner and above-the-break
# threes, a pull-up jumper, a playoff hook, a heave from the backcourt, a zone this code does not
# know (its codes are NaN, as for a new zone live), and one player's shots in one game (form from
# his earlier shots).
PROBE_SHOTS: tuple[dict[str, Any], ...] = tuple(
    dict(zip(_SHOT_FIELDS, values, strict=True))
    for values in (
        (201939, 21800001, 1, 11, 2, "Jump Shot", "3PT Field Goal", "Regular Season",
         "Above the Break 3", "Center(C)", "24+ ft.", 26, 10, 258, 0),
        (201939, 21800001, 1, 8, 40, "Driving Layup Shot", "2PT Field Goal", "Regular Season",
         "Restricted Area", "Center(C)", "Less Than 8 ft.", 1, 5, 8, 1),
        (201939, 21800001, 2, 3, 15, "Pullup Jump shot", "2PT Field Goal", "Regular Season",
         "Mid-Range", "Left Side Center(LC)", "16-24 ft.", 18, -140, 116, 1),
        (203507, 21800001, 1, 10, 30, "Alley Oop Dunk Shot", "2PT Field Goal", "Regular Season",
         "Restricted Area", "Center(C)", "Less Than 8 ft.", 0, 0, 2, 1),
        (202691, 21800002, 3, 0, 1, "Jump Shot", "3PT Field Goal", "Regular Season",
         "Backcourt", "Back Court(BC)", "Back Court Shot", 62, 20, 610, 0),
        (202691, 21800002, 4, 5, 12, "Jump Shot", "3PT Field Goal", "Regular Season",
         "Left Corner 3", "Left Side(L)", "24+ ft.", 22, -222, 11, 1),
        (1628369, 41800401, 4, 1, 48, "Hook Shot", "2PT Field Goal", "Playoffs",
         "In The Paint (Non-RA)", "Right Side(R)", "8-16 ft.", 9, 80, 50, 0),
        (1628369, 41800401, 4, 0, 20, "Turnaround Fadeaway shot", "2PT Field Goal", "Playoffs",
         "Somewhere New", "Nowhere(N)", "Unheard Of", 14, 60, 120, 0),
    )
)  # fmt: skip


@lru_cache(maxsize=1)
def probe_matrix() -> np.ndarray:
    """The probe shots' features, computed by the function the stream uses."""
    matrix = build_features(columns_from_records(list(PROBE_SHOTS)))
    matrix.setflags(write=False)
    return matrix


def feature_mismatch(names: tuple[str, ...]) -> str | None:
    """Why a model fitted on the columns ``names`` cannot take this code's features, or None."""
    if names == FEATURE_NAMES:
        return None
    missing = [name for name in FEATURE_NAMES if name not in names]
    unknown = [name for name in names if name not in FEATURE_NAMES]
    head = f"it was fitted on {len(names)} feature columns, this code computes {len(FEATURE_NAMES)}"
    details = [f"without {_some(missing)}"] if missing else []
    details += [f"with {_some(unknown)}, which this code does not compute"] if unknown else []
    return f"{head}: {'; '.join(details) or 'the same columns in another order'}"


def _some(names: list[str], at_most: int = 5) -> str:
    shown = ", ".join(names[:at_most])
    return shown + (f" and {len(names) - at_most} more" if len(names) > at_most else "")


def prediction_problem(model: Any) -> str | None:
    """Why ``model``'s answers for the probe shots are not P(made), or None when they are.

    Each probe shot must get one finite probability in ``[0, 1]``.
    """
    matrix = probe_matrix()
    rows = len(matrix)
    try:
        p = np.asarray(model.predict(matrix.copy()), dtype=np.float64)
    except Exception as error:
        return f"it fails on a probe batch of {rows} shots ({type(error).__name__}: {error})"
    if p.shape != (rows,):
        return f"it answers a {p.shape} array for a probe batch of {rows} shots, not {rows} values"
    bad = ~np.isfinite(p) | (p < 0.0) | (p > 1.0)
    if bad.any():
        shown = ", ".join(f"{value:g}" for value in p[bad][:3])
        return (
            f"it answers {shown} for {int(bad.sum())} of {rows} probe shots: "
            "not probabilities in [0, 1]"
        )
    return None
