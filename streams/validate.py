"""Turning raw Kafka values into checked records, or a reason why not.

Everything that fails here goes to ``shots.dlq`` with the reason and the original bytes; the
stream never drops a record silently and never stops on a bad one.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from pydantic import BaseModel, ValidationError

from parivision.schemas import Outcome, Shot, describe_validation_error


class InvalidRecord(ValueError):
    """A record that cannot be scored; ``str(error)`` is the reason sent to the DLQ, and
    ``code`` a short, bounded name for it (``empty``, ``invalid_json``, ``schema``) that metrics
    count by."""

    def __init__(self, reason: str, code: str = "schema") -> None:
        super().__init__(reason)
        self.code = code


def _parse(model: type[BaseModel], raw: bytes | None) -> dict[str, Any]:
    if not raw:
        raise InvalidRecord("empty message", "empty")
    try:
        return model.model_validate_json(raw).model_dump()
    except ValidationError as error:
        if any(e.get("type") == "json_invalid" for e in error.errors()):
            raise InvalidRecord(
                f"not valid JSON: {error.errors()[0].get('msg')}", "invalid_json"
            ) from None
        raise InvalidRecord(describe_validation_error(error)) from None


def parse_attempt(raw: bytes | None) -> dict[str, Any]:
    """Check a ``shots.attempts`` value and return it as a plain dict of :class:`Shot` fields."""
    return _parse(Shot, raw)


def parse_outcome(raw: bytes | None) -> dict[str, Any]:
    """Check a ``shots.outcomes`` value and return it as a plain dict of :class:`Outcome` fields."""
    return _parse(Outcome, raw)


def dead_letter(
    raw: bytes | None,
    reason: str,
    *,
    stage: str,
    topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
    key: bytes | None = None,
) -> bytes:
    """The DLQ value: why it failed, where it came from, and the original bytes (base64).

    ``original_text`` is there too when the bytes are UTF-8, so a person can read the record
    without decoding anything.
    """
    raw = raw or b""
    record: dict[str, Any] = {
        "reason": reason,
        "stage": stage,
        "source_topic": topic,
        "source_partition": partition,
        "source_offset": offset,
        "key": key.decode("utf-8", "replace") if key else None,
        "original_b64": base64.b64encode(raw).decode("ascii"),
        "failed_at": time.time(),
    }
    try:
        record["original_text"] = raw.decode("utf-8")
    except UnicodeDecodeError:
        record["original_text"] = None
    return json.dumps(record).encode()
