"""The one feature function, shared by batch training and the live stream.

The original PariVision app and its training script computed the clock and the zone codes
differently, so the served model saw inputs it was never trained on.  Here both paths call
:func:`build_features` on the same columns, and :data:`FEATURE_NAMES` is logged with every model
so the stream refuses a model trained on another feature set.

Input is columnar: a mapping from :class:`parivision.schemas.Shot` field names to equal-length
sequences (a pandas DataFrame works as it is; the stream uses :func:`columns_from_records`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from models.form import FORM_INPUT_COLUMNS, FORM_NAMES, player_form

# v2 added player form (models.form); a model of another set is refused by the stream.
FEATURE_SET = "v2"

ZONE_BASIC = (
    "Restricted Area",
    "In The Paint (Non-RA)",
    "Mid-Range",
    "Left Corner 3",
    "Right Corner 3",
    "Above the Break 3",
    "Backcourt",
)
ZONE_AREA = (
    "Center(C)",
    "Left Side(L)",
    "Left Side Center(LC)",
    "Right Side(R)",
    "Right Side Center(RC)",
    "Back Court(BC)",
)
ZONE_RANGE = ("Less Than 8 ft.", "8-16 ft.", "16-24 ft.", "24+ ft.", "Back Court Shot")

# Action types are many (66 in the real data, new ones appear); their words carry the signal and
# generalise to unseen combinations ("Driving Floating Bank Jump Shot").
ACTION_WORDS = (
    "dunk",
    "layup",
    "jump",
    "hook",
    "tip",
    "fadeaway",
    "pullup",
    "step back",
    "floating",
    "driving",
    "alley oop",
    "bank",
    "finger roll",
    "putback",
    "turnaround",
    "running",
    "cutting",
    "reverse",
)

CATEGORICAL = ("zone_basic", "zone_area", "zone_range")

FEATURE_NAMES: tuple[str, ...] = (
    "x",
    "y",
    "distance_m",
    "coord_distance_ft",
    "angle_deg",
    "period",
    "seconds_left_in_period",
    "shot_value",
    "playoffs",
    *CATEGORICAL,
    *(f"action_{word.replace(' ', '_')}" for word in ACTION_WORDS),
    *FORM_NAMES,
)
_FORM_START = len(FEATURE_NAMES) - len(FORM_NAMES)

# Columns the function reads; anything else in the input is ignored.
INPUT_COLUMNS = (
    "x",
    "y",
    "shot_distance",
    "period",
    "minutes_remaining",
    "seconds_remaining",
    "shot_type",
    "season_type",
    "shot_zone_basic",
    "shot_zone_area",
    "shot_zone_range",
    "action_type",
)

_FEET_TO_METRES = 0.3048


def _codes(values: Sequence[Any], vocabulary: tuple[str, ...]) -> np.ndarray:
    index = {name: float(i) for i, name in enumerate(vocabulary)}
    # Unknown zones become NaN, which LightGBM treats as missing rather than as a real category.
    return np.fromiter((index.get(v, np.nan) for v in values), dtype=np.float64, count=len(values))


def action_words(action_type: str) -> tuple[float, ...]:
    """1.0 for each of :data:`ACTION_WORDS` the action type holds, else 0.0 (all 0: an action
    the model cannot read; :mod:`models.inputs` prices it as a generic one)."""
    return _action_flags(action_type)


@lru_cache(maxsize=4096)
def _action_flags(action_type: str) -> tuple[float, ...]:
    text = action_type.lower().replace("-", " ")
    text = text.replace("pull up", "pullup").replace("stepback", "step back")
    return tuple(1.0 if word in text else 0.0 for word in ACTION_WORDS)


def build_features(columns: Mapping[str, Any], form: np.ndarray | None = None) -> np.ndarray:
    """Return the feature matrix, one row per shot, columns in :data:`FEATURE_NAMES` order.

    The player-form columns come from ``form`` when given (the stream computes them shot by shot
    from its table, with :func:`models.form.form_values`); otherwise the shots must be labelled
    and in time order, and they are computed here by :func:`models.form.player_form`, each
    shot's from the shots before it.  So pass a whole history at once, not a slice of it.

    Example:
        >>> shot = {"player_id": 977, "game_id": 29600027, "made": 0,
        ...         "x": -140, "y": 116, "shot_distance": 18, "period": 1,
        ...         "minutes_remaining": 0, "seconds_remaining": 42,
        ...         "shot_type": "2PT Field Goal", "season_type": "Regular Season",
        ...         "shot_zone_basic": "Mid-Range", "shot_zone_area": "Left Side Center(LC)",
        ...         "shot_zone_range": "16-24 ft.", "action_type": "Jump Shot"}
        >>> row = build_features(columns_from_records([shot]))[0]
        >>> round(float(row[FEATURE_NAMES.index("distance_m")]), 2)
        5.49
    """
    x = np.asarray(columns["x"], dtype=np.float64)
    y = np.asarray(columns["y"], dtype=np.float64)
    n = len(x)
    out = np.empty((n, len(FEATURE_NAMES)), dtype=np.float64)
    out[:, 0] = x
    out[:, 1] = y
    out[:, 2] = np.asarray(columns["shot_distance"], dtype=np.float64) * _FEET_TO_METRES
    out[:, 3] = np.hypot(x, y) / 10.0
    # 0 degrees straight on from the hoop, +-90 along the baseline.
    out[:, 4] = np.degrees(np.arctan2(x, y))
    out[:, 5] = np.asarray(columns["period"], dtype=np.float64)
    out[:, 6] = np.asarray(columns["minutes_remaining"], dtype=np.float64) * 60.0 + np.asarray(
        columns["seconds_remaining"], dtype=np.float64
    )
    shot_type = list(columns["shot_type"])
    out[:, 7] = np.fromiter((3.0 if s.startswith("3") else 2.0 for s in shot_type), np.float64, n)
    season = list(columns["season_type"])
    out[:, 8] = np.fromiter((1.0 if s == "Playoffs" else 0.0 for s in season), np.float64, n)
    out[:, 9] = _codes(list(columns["shot_zone_basic"]), ZONE_BASIC)
    out[:, 10] = _codes(list(columns["shot_zone_area"]), ZONE_AREA)
    out[:, 11] = _codes(list(columns["shot_zone_range"]), ZONE_RANGE)
    if n:
        out[:, 12:_FORM_START] = np.array(
            [_action_flags(a) for a in columns["action_type"]], dtype=np.float64
        )
    if form is None:
        form = player_form(columns)
    if form.shape != (n, len(FORM_NAMES)):
        raise ValueError(f"form values have shape {form.shape}, expected {(n, len(FORM_NAMES))}")
    out[:, _FORM_START:] = form
    return out


def columns_from_records(records: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Turn a micro-batch of shot dicts into the columnar input of :func:`build_features`
    (with the columns player form needs, where the records have them)."""
    names = [*INPUT_COLUMNS, *(c for c in FORM_INPUT_COLUMNS if c not in INPUT_COLUMNS), "made"]
    present = records[0].keys() if records else names
    return {name: [r[name] for r in records] for name in names if name in present}


def feature_dict(row: np.ndarray) -> dict[str, float]:
    """One feature row as a name -> value dict (what River learners and MongoDB store).

    Missing values (NaN) are left out: River learners treat an absent key as missing, and JSON
    has no NaN.
    """
    return {
        name: value
        for name, value in zip(FEATURE_NAMES, row.tolist(), strict=True)
        if value == value
    }
