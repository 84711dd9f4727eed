"""Shots as API clients send them: VirtualBets records or the project's own shot schema.

A VirtualBets record is keyed by the 22 column names of the Kaggle / original PariVision layout,
its values strings (as the original API served them) or typed; it goes through the same
:func:`parivision.rows.row_to_shot` as every file source.  Anything else is read as the
project's :class:`parivision.schemas.Shot`, whose ``shot_id`` may be left out.  Either way the
result is validated by ``Shot`` (court bounds included), and every problem is reported with the
field the client used, so a 422 says exactly what to fix.
"""

from __future__ import annotations

from typing import Any, get_args

from pydantic import ValidationError

from parivision.rows import row_to_shot
from parivision.schemas import (
    CSV_COLUMNS,
    INT_FIELDS,
    LAST_TIME,
    MAX_ID,
    MAX_TEXT,
    Shot,
    shot_id_for,
)

__all__ = ["BadShot", "parse_shot", "range_pattern", "shot_input_schema", "whole_number"]

_COLUMN_FOR_FIELD = {field: column for column, field in CSV_COLUMNS.items()}
_MADE = "Shot Made Flag"


class BadShot(ValueError):
    """A shot the API cannot score; ``errors`` are FastAPI-style ``{loc, msg, type}`` items."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{e['loc']}: {e['msg']}" for e in errors))
        self.errors = errors


def _error(loc: tuple, msg: str, kind: str = "value_error") -> dict[str, Any]:
    return {"loc": list(loc), "msg": msg, "type": kind}


def parse_shot(raw: Any, loc: tuple = ("body",)) -> dict[str, Any]:
    """Validate one shot; return the :class:`Shot` fields (``shot_id`` filled in).

    Raises:
        BadShot: with one error per problem, located at ``loc`` + the client's field name.
    """
    if not isinstance(raw, dict):
        raise BadShot([_error(loc, "a shot is a JSON object", "model_attributes_type")])
    virtualbets = any(key in CSV_COLUMNS for key in raw)
    if virtualbets:
        # The outcome is not an input (any value is ignored); a record without an event id
        # gets the derived id, as a source without event ids does.
        record = {"Game Event ID": None, **raw, _MADE: "0"}
        try:
            fields, _ = row_to_shot(record)
        except ValueError as error:
            raise BadShot([_error((*loc, _column_of(str(error))), str(error))]) from None
    else:
        fields = dict(raw)
        given = fields.get("shot_id")
        if given is None or (isinstance(given, str) and not given.strip()):
            fields["shot_id"] = _derived_id(fields)
    try:
        shot = Shot.model_validate(fields)
    except ValidationError as error:
        raise BadShot(
            [
                _error(
                    (*loc, *_client_loc(item.get("loc", ()), virtualbets)),
                    item.get("msg", "invalid"),
                    item.get("type", "value_error"),
                )
                for item in error.errors(include_url=False, include_input=False)
            ]
        ) from None
    return shot.model_dump()


def _derived_id(fields: dict[str, Any]) -> str:
    """The id a source without event ids gives; a placeholder when the parts are unusable
    (``Shot`` then reports the real problem with those fields)."""
    try:
        return shot_id_for(
            int(fields.get("game_id")),
            fields.get("game_event_id"),
            period=fields.get("period", ""),
            minutes_remaining=fields.get("minutes_remaining", ""),
            seconds_remaining=fields.get("seconds_remaining", ""),
            player_id=fields.get("player_id", ""),
            x=fields.get("x", ""),
            y=fields.get("y", ""),
        )
    except (TypeError, ValueError, OverflowError):
        return "unidentified"


def _column_of(message: str) -> str:
    """The column a :func:`row_to_shot` error names (its messages start with it)."""
    if message.startswith("missing column "):
        return message[len("missing column ") :].strip("'\"")
    head = message.split(":", 1)[0]
    return head if head in CSV_COLUMNS else "record"


def _client_loc(loc: tuple, virtualbets: bool) -> tuple:
    if virtualbets and loc and loc[0] in _COLUMN_FOR_FIELD:
        return (_COLUMN_FOR_FIELD[loc[0]], *loc[1:])
    return tuple(loc)


# The OpenAPI schema of a shot says what the server takes and nothing more: each bound of
# :class:`Shot`, the clock of the period, and the text forms it reads (numbers as digits, as the
# original API served them).  A generated request that fits it is scored; one that does not is
# a 422 (tests/integration/test_api_properties.py holds the server to both).
_TEXT = ("player_name", "team_name", "home_team", "away_team", "season_type")
_NAMED_FIELDS = ("action_type", "shot_zone_basic", "shot_zone_area", "shot_zone_range")
# 12-minute quarters, 5-minute overtimes (Shot._on_the_clock): the moments a period has, as
# (periods, minutes, seconds) ranges.
_CLOCK = (
    ((1, 4), (0, 11), (0, 59)),
    ((1, 4), (12, 12), (0, 0)),
    ((5, 10), (0, 4), (0, 59)),
    ((5, 10), (5, 5), (0, 0)),
)


def whole_number(low: int, high: int, *, text: bool = True) -> dict[str, Any]:
    """A whole number from ``low`` to ``high``: a JSON integer or, with ``text``, its digits."""
    number = {"type": "integer", "minimum": low, "maximum": high}
    if not text:
        return number
    return {"anyOf": [number, {"type": "string", "pattern": range_pattern(low, high)}]}


def range_pattern(low: int, high: int) -> str:
    """A regular expression for the integers ``low`` to ``high`` written as ``str()`` writes
    them (the bounds of a number sent as text; the server also reads ``" 7"`` or ``"7.0"``).

    >>> range_pattern(-52, 940)
    '^(?:[0-9]|[1-9][0-9]|[1-8][0-9][0-9]|9[0-3][0-9]|940|-[1-9]|-[1-4][0-9]|-5[0-2])$'
    """
    if high == MAX_ID and low in (0, 1):  # any id up to 18 digits: readable, and inside the bound
        return "^(?:0|[1-9][0-9]{0,17})$" if low == 0 else "^[1-9][0-9]{0,17}$"
    parts = _naturals(max(low, 0), high) if high >= 0 else []
    if low < 0:
        parts += [f"-{p}" for p in _naturals(max(-high, 1), -low)]
    return f"^(?:{'|'.join(parts)})$"


def _naturals(low: int, high: int) -> list[str]:
    out = []
    for width in range(len(str(low)), len(str(high)) + 1):
        first = max(low, 10 ** (width - 1) if width > 1 else 0)
        last = min(high, 10**width - 1)
        if first <= last:
            out += _between(str(first), str(last))
    return out


def _between(a: str, b: str) -> list[str]:
    """Patterns for the digit strings of one width from ``a`` to ``b``."""
    if a == b:
        return [a]
    if a[0] == b[0]:
        return [a[0] + p for p in _between(a[1:], b[1:])]
    rest = len(a) - 1
    free = "[0-9]" * rest if rest <= 2 else f"[0-9]{{{rest}}}"
    out = []
    low, high = int(a[0]), int(b[0])
    if rest and a[1:] != "0" * rest:
        out += [a[0] + p for p in _between(a[1:], "9" * rest)]
        low += 1
    whole_top = not rest or b[1:] == "9" * rest
    top = high if whole_top else high - 1
    if low <= top:
        out.append((str(low) if low == top else f"[{low}-{top}]") + free)
    if not whole_top:
        out += [b[0] + p for p in _between("0" * rest, b[1:])]
    return out


def _bounds(field: str) -> tuple[int, int]:
    """The ``ge``/``gt`` and ``le`` of an integer field of :class:`Shot`."""
    low, high = None, None
    for item in Shot.model_fields[field].metadata:
        low = getattr(item, "ge", None) if getattr(item, "ge", None) is not None else low
        low = item.gt + 1 if getattr(item, "gt", None) is not None else low
        high = getattr(item, "le", None) if getattr(item, "le", None) is not None else high
    assert low is not None and high is not None, field
    return low, high


def _text(*, named: bool, numbers: bool = False, null: bool = False) -> dict[str, Any]:
    """Text up to MAX_TEXT characters, not blank when ``named`` (the server strips it)."""
    text: dict[str, Any] = {"type": "string", "maxLength": MAX_TEXT}
    if named:
        text["pattern"] = r"\S"
    kinds = [text]
    if numbers:  # a VirtualBets value may be a JSON number: it is read as its digits
        kinds.append({"type": "number"})
    if null:
        kinds.append({"type": "null"})
    return kinds[0] if len(kinds) == 1 else {"anyOf": kinds}


def _clock(period: str, minutes: str, seconds: str) -> dict[str, Any]:
    return {
        "anyOf": [
            {
                "properties": {
                    period: whole_number(*p),
                    minutes: whole_number(*m),
                    seconds: whole_number(*s),
                }
            }
            for p, m, s in _CLOCK
        ],
        "description": "12-minute quarters (periods 1-4), 5-minute overtimes: the clock must "
        "be one the period has (12:00 of a quarter, not 12:30; 5:00 of an overtime, not 7:00).",
    }


def _field_schemas(*, virtualbets: bool) -> dict[str, dict[str, Any]]:
    """The schema of each Shot field as a client may send it, by field name."""
    ints = {name: whole_number(*_bounds(name)) for name in _INT_FIELDS}
    event = whole_number(*_bounds("game_event_id"))
    kinds = get_args(Shot.model_fields["shot_type"].annotation)
    fields: dict[str, dict[str, Any]] = {
        **ints,
        "game_event_id": {"anyOf": [*event["anyOf"], {"type": "null"}]},
        "shot_type": {"type": "string", "enum": list(kinds)},
        **{name: _text(named=True, numbers=virtualbets) for name in _NAMED_FIELDS},
        **{name: _text(named=False, numbers=virtualbets, null=virtualbets) for name in _TEXT},
    }
    if virtualbets:  # an empty event id is no event id (the bulk file has none)
        fields["game_event_id"]["anyOf"].append({"type": "string", "pattern": "^[ \t]*$"})
    return fields


_INT_FIELDS = tuple(name for name in INT_FIELDS if name != "game_event_id")


def _virtualbets_schema() -> dict[str, Any]:
    fields = _field_schemas(virtualbets=True)
    properties = {column: fields[field] for column, field in CSV_COLUMNS.items() if field in fields}
    properties[_MADE] = {"description": "ignored: the outcome is not an input"}
    required = [c for c in CSV_COLUMNS if c not in ("Game Event ID", _MADE)]
    return {
        "title": "VirtualBetsRecord",
        "description": "A record keyed by the 22 VirtualBets / Kaggle column names, values typed "
        "or as text; 'Shot Made Flag' is ignored.",
        "type": "object",
        "properties": properties,
        "required": required,
        "allOf": [_clock("Period", "Minutes Remaining", "Seconds Remaining")],
    }


def _shot_schema() -> dict[str, Any]:
    schema = Shot.model_json_schema()
    properties = schema["properties"]
    for name, field_schema in _field_schemas(virtualbets=False).items():
        properties[name] = {**field_schema, "title": properties[name].get("title", name)}
    # Left out, empty or blank, the id is derived from the shot (see the module's docstring).
    properties["shot_id"] = {
        "anyOf": [{"type": "string", "maxLength": 128}, {"type": "null"}],
        "title": "Shot Id",
        "description": "default: derived from game, period, clock, player and X/Y",
    }
    properties["replay_id"] = {"type": "string", "maxLength": 128, "title": "Replay Id"}
    properties["produced_at"] = {
        "anyOf": [
            {"type": "number", "minimum": 0, "maximum": LAST_TIME},
            {"type": "string", "pattern": r"^[0-9]{1,9}(?:\.[0-9]{1,6})?$"},
        ],
        "title": "Produced At",
    }
    return {
        "title": "Shot",
        "description": schema.get("description", ""),
        "type": "object",
        "properties": properties,
        "required": [name for name in schema.get("required", []) if name != "shot_id"],
        # A VirtualBets column name makes the object a VirtualBets record.
        "propertyNames": {"not": {"enum": list(CSV_COLUMNS)}},
        "allOf": [_clock("period", "minutes_remaining", "seconds_remaining")],
    }


def shot_input_schema() -> dict[str, Any]:
    """The OpenAPI schema of one shot: either layout."""
    return {"oneOf": [_shot_schema(), _virtualbets_schema()]}
