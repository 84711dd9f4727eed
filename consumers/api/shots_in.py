"""Shots as API clients send them: VirtualBets records or the project's own shot schema.

A VirtualBets record is keyed by the 22 column names of the Kaggle / original PariVision layout,
its values strings (as the original API served them) or typed; it goes through the same
:func:`parivision.rows.row_to_shot` as every file source.  Anything else is read as the
project's :class:`parivision.schemas.Shot`, whose ``shot_id`` may be left out.  Either way the
result is validated by ``Shot`` (court bounds included), and every problem is reported with the
field the client used, so a 422 says exactly what to fix.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from parivision.rows import row_to_shot
from parivision.schemas import CSV_COLUMNS, Shot, shot_id_for

__all__ = ["BadShot", "parse_shot", "shot_input_schema"]

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
        if fields.get("shot_id") in (None, ""):
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


def _virtualbets_schema() -> dict[str, Any]:
    value = {"anyOf": [{"type": "string"}, {"type": "integer"}]}
    properties = {column: dict(value) for column in CSV_COLUMNS}
    for column in ("Player Name", "Team Name", "Action Type", "Shot Type", "Shot Zone Basic"):
        properties[column] = {"type": "string"}
    for column in ("Shot Zone Area", "Shot Zone Range", "Home Team", "Away Team", "Season Type"):
        properties[column] = {"type": "string"}
    properties["Game Event ID"] = {
        "anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]
    }
    required = [c for c in CSV_COLUMNS if c not in ("Game Event ID", _MADE)]
    return {
        "title": "VirtualBetsRecord",
        "description": "A record keyed by the 22 VirtualBets / Kaggle column names; "
        "'Shot Made Flag' is ignored.",
        "type": "object",
        "properties": properties,
        "required": required,
    }


def _shot_schema() -> dict[str, Any]:
    schema = Shot.model_json_schema()
    schema["required"] = [name for name in schema.get("required", []) if name != "shot_id"]
    schema["title"] = "Shot"
    return schema


def shot_input_schema() -> dict[str, Any]:
    """The OpenAPI schema of one shot: either layout."""
    return {"oneOf": [_shot_schema(), _virtualbets_schema()]}
