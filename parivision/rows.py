"""Turn one record keyed by the 22 CSV column names into a shot dict and its outcome.

Shared by every source that speaks the Kaggle / VirtualBets layout (CSV files, the VirtualBets
JSON records and its HTTP API), so they all agree on types and on the shot id.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from operator import itemgetter
from typing import Any

from parivision.schemas import CSV_COLUMNS, shot_id_for

__all__ = ["REQUIRED_COLUMNS", "row_to_shot"]

REQUIRED_COLUMNS: tuple[str, ...] = tuple(CSV_COLUMNS)

# The order of these two tuples is the order row_to_shot unpacks them in.  Game Event ID is
# apart because it may be empty (the bulk file has none).
_INT_COLUMNS = (
    "Game ID",
    "Player ID",
    "Team ID",
    "Period",
    "Minutes Remaining",
    "Seconds Remaining",
    "Shot Distance",
    "X Location",
    "Y Location",
    "Game Date",
    "Shot Made Flag",
)
_TEXT_COLUMNS = (
    "Player Name",
    "Team Name",
    "Action Type",
    "Shot Type",
    "Shot Zone Basic",
    "Shot Zone Area",
    "Shot Zone Range",
    "Home Team",
    "Away Team",
    "Season Type",
)
_get_ints = itemgetter(*_INT_COLUMNS)
_get_texts = itemgetter(*_TEXT_COLUMNS)
# int() is exact on these; bool is left out on purpose (True is not a coordinate).
_EXACT_INT_TYPES = frozenset({str, int})
_TEXT_TYPES = frozenset({str})


def _text(column: str, value: Any) -> str:
    """A text column's value: empty for None, a number as its digits; a list, an object or a
    boolean is refused (taken as text it became an action nobody recorded)."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple, dict, set, bool)):
        raise ValueError(f"{column}: a {type(value).__name__} is not text")
    return str(value)


def row_to_shot(row: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """Convert one record to the :class:`parivision.schemas.Shot` fields and the made flag.

    Values may be strings (CSV, VirtualBets JSON) or JSON numbers.  Only parsing and types are
    checked here; ranges such as court bounds are the stream's job, through the Shot model.

    Args:
        row: Mapping from the 22 CSV column names (``"Game ID"``, ...) to values. Extra keys
            are ignored.

    Returns:
        ``(shot, made)``: ``shot`` holds exactly the Shot fields including ``shot_id``, with
        ints as ``int`` and ``game_event_id`` ``None`` when empty; ``made`` is 0 or 1.

    Raises:
        ValueError: A column is missing, an integer column does not hold an integer, or the
            made flag is not 0 or 1. The message names the column and the value.

    Example:
        >>> record = dict.fromkeys(REQUIRED_COLUMNS, "7") | {"Shot Made Flag": "1"}
        >>> shot, made = row_to_shot(record)
        >>> shot["shot_id"], shot["x"], shot["player_name"], made
        ('7-7', 7, '7', 1)
    """
    # Fast path, run for every row of a multi-million-row replay: C-level lookups and int()
    # on values that are str or int.  Anything else (a missing key, "12.0", a JSON float that
    # int() would silently truncate) takes the slow path, which says exactly what is wrong.
    try:
        raw = _get_ints(row)
        if not _EXACT_INT_TYPES.issuperset(map(type, raw)):
            raise TypeError
        game_id, player_id, team_id, period, minutes, seconds, distance, x, y, date, made = map(
            int, raw
        )
    except (KeyError, TypeError, ValueError):
        game_id, player_id, team_id, period, minutes, seconds, distance, x, y, date, made = (
            _int_slowly(row, column) for column in _INT_COLUMNS
        )
    if made != 0 and made != 1:
        raise ValueError(f"Shot Made Flag: {row['Shot Made Flag']!r} is not 0 or 1")
    event = _event_id(row)
    try:
        texts = _get_texts(row)
    except KeyError:
        missing = [column for column in _TEXT_COLUMNS if column not in row]
        raise ValueError(f"missing column {missing[0]!r}") from None
    if not _TEXT_TYPES.issuperset(map(type, texts)):
        texts = tuple(map(_text, _TEXT_COLUMNS, texts))
    name, team, action, shot_type, basic, area, zone_range, home, away, season = texts
    shot_id = shot_id_for(
        game_id,
        event,
        period=period,
        minutes_remaining=minutes,
        seconds_remaining=seconds,
        player_id=player_id,
        x=x,
        y=y,
    )
    shot = {
        "shot_id": shot_id,
        "game_id": game_id,
        "game_event_id": event,
        "player_id": player_id,
        "player_name": name,
        "team_id": team_id,
        "team_name": team,
        "period": period,
        "minutes_remaining": minutes,
        "seconds_remaining": seconds,
        "action_type": action,
        "shot_type": shot_type,
        "shot_zone_basic": basic,
        "shot_zone_area": area,
        "shot_zone_range": zone_range,
        "shot_distance": distance,
        "x": x,
        "y": y,
        "game_date": date,
        "home_team": home,
        "away_team": away,
        "season_type": season,
    }
    return shot, made


def _event_id(row: Mapping[str, Any]) -> int | None:
    """Game Event ID, or ``None`` where the source has none (empty string or JSON null)."""
    try:
        value = row["Game Event ID"]
    except KeyError:
        raise ValueError("missing column 'Game Event ID'") from None
    if value == "" or value is None:
        return None
    if type(value) is str:
        try:
            return int(value)
        except ValueError:
            if not value.strip():
                return None
    return _int_slowly(row, "Game Event ID")


def _int_slowly(row: Mapping[str, Any], column: str) -> int:
    """Parse one integer column, accepting ``"12.0"`` (pandas writes ints as floats) only."""
    try:
        value = row[column]
    except KeyError:
        raise ValueError(f"missing column {column!r}") from None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError(f"{column}: empty, expected an integer")
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not number.is_integer():
            raise ValueError(f"{column}: {value!r} is not an integer")
        return int(number)
    return _json_int(column, value)


def _json_int(column: str, value: Any) -> int:
    """An int from a JSON number; floats only when whole, never bool or null."""
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    if value is None:
        raise ValueError(f"{column}: empty, expected an integer")
    raise ValueError(f"{column}: {value!r} is not an integer")
