"""Turning raw Kafka values into checked records, or a reason why not.

Everything that fails here goes to ``shots.dlq`` with the reason and the original bytes
(:func:`parivision.dlq.dead_letter`); the stream never drops a record silently and never stops
on a bad one.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ValidationError

from models.inputs import as_priced
from parivision.contracts import file_name
from parivision.rows import row_to_shot
from parivision.schemas import (
    ATTEMPTS,
    CSV_COLUMNS,
    OUTCOMES,
    Outcome,
    Shot,
    describe_validation_error,
)


class InvalidRecord(ValueError):
    """A record that cannot be scored; ``str(error)`` is the reason sent to the DLQ, and
    ``code`` a short, bounded name for it (``empty``, ``invalid_json``, ``schema``,
    ``virtualbets_layout``; the worker adds ``processing_error``) that metrics count by."""

    def __init__(self, reason: str, code: str = "schema") -> None:
        super().__init__(reason)
        self.code = code


def _parse(model: type[BaseModel], raw: bytes | None, topic: str) -> dict[str, Any]:
    if not raw:
        raise InvalidRecord("empty message", "empty")
    try:
        return model.model_validate_json(raw).model_dump()
    except ValidationError as error:
        if any(e.get("type") == "json_invalid" for e in error.errors()):
            raise InvalidRecord(
                f"not valid JSON: {error.errors()[0].get('msg')}", "invalid_json"
            ) from None
        virtualbets = _virtualbets_reason(raw, topic)
        if virtualbets:
            raise InvalidRecord(virtualbets, "virtualbets_layout") from None
        raise InvalidRecord(describe_validation_error(error)) from None


def _virtualbets_reason(raw: bytes, topic: str) -> str | None:
    """Why a record in the original VirtualBets layout is refused, or None for any other record.

    Such a record (keyed by the 22 CSV column names, values often strings) carries its outcome
    in ``Shot Made Flag``.  Taking it as an attempt would drop the outcome: the shot would never
    be labelled, and the player's next shots would wait ``form_wait_s`` each for it.  The replay
    splits a record into an attempt and a later outcome, so that is where it is sent.
    """
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict) or "shot_id" in record:
        return None
    columns = [key for key in record if key in CSV_COLUMNS]
    if not columns:
        return None
    try:
        shot, _ = row_to_shot({"Game Event ID": None, **record})
        which = f", shot {shot['shot_id']}"
    except Exception:  # the id only helps a person find the shot; it must never stop the worker
        which = ""
    named = ", ".join(repr(column) for column in columns[:3])
    model, what = _EXPECTED[topic]
    return (
        f"a record in the VirtualBets 22-column layout ({named}, ...){which}; {topic} expects "
        f"the {model} schema (schemas/{file_name(topic)}): {what}. Send VirtualBets records "
        "through `parivision replay --data FILE.jsonl`, which publishes each as an attempt "
        "and, later, its outcome"
    )


_EXPECTED = {
    ATTEMPTS: ("Shot", "an attempt, without its outcome"),
    OUTCOMES: ("Outcome", "a shot id and whether it was made"),
}


def parse_attempt(raw: bytes | None) -> dict[str, Any]:
    """Check a ``shots.attempts`` value and return it as a plain dict of :class:`Shot` fields,
    as the model prices it (:func:`models.inputs.as_priced`): an input it would misread is
    replaced, and ``warnings`` (present only then) says what, with the value sent."""
    shot, warnings = as_priced(_parse(Shot, raw, ATTEMPTS))
    if warnings:
        shot["warnings"] = warnings
    return shot


def parse_outcome(raw: bytes | None) -> dict[str, Any]:
    """Check a ``shots.outcomes`` value and return it as a plain dict of :class:`Outcome` fields."""
    return _parse(Outcome, raw, OUTCOMES)
