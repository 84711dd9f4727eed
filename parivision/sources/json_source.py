"""Shots from the original VirtualBets/PariVision JSON records: a JSON array or JSON Lines."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from parivision.rows import row_to_shot
from parivision.sources.base import BadRow, Source, SourceShot

__all__ = ["VirtualBetsJsonSource", "record_to_item"]


class VirtualBetsJsonSource(Source):
    """Yields the records of a VirtualBets JSON file in file order.

    Each record is an object keyed by the 22 CSV column names whose values are strings
    (``{"Game ID": "21100057", "Shot Made Flag": "0", "X Location": "13", ...}``), as the
    original project stored and served them.  The file is either one JSON array of records or
    JSON Lines (one record per line); the first non-blank character decides which.

    JSON Lines are streamed.  An array is parsed whole, which suits the size such files have
    (the original sample is 1,000 records); use CSV or JSON Lines for millions of shots.

    Args:
        path: The ``.json`` or ``.jsonl`` file.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: When iterating, if an array file is not valid JSON (there is no line to
            blame a single record on, so the whole file is refused).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"JSON file not found: {self.path}")
        self.name = f"json:{self.path.name}"

    def __iter__(self) -> Iterator[SourceShot | BadRow]:
        with open(self.path, encoding="utf-8-sig", errors="replace") as handle:
            start = _first_char(handle)
            handle.seek(0)
            if start == "[":
                yield from self._array(handle.read())
            else:
                yield from self._lines(handle)

    def _array(self, text: str) -> Iterator[SourceShot | BadRow]:
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{self.path}: not valid JSON ({exc})") from None
        for number, record in enumerate(records, start=1):
            yield record_to_item(record, f"{self.path.name} record {number}")

    def _lines(self, handle: Any) -> Iterator[SourceShot | BadRow]:
        for number, line in enumerate(handle, start=1):
            text = line.strip()
            if not text:
                continue
            where = f"{self.path.name} line {number}"
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                yield BadRow(where, f"not valid JSON: {exc}", text)
                continue
            yield record_to_item(record, where, raw=text)


def record_to_item(record: Any, where: str, raw: str | None = None) -> SourceShot | BadRow:
    """One decoded JSON record as a shot, or a bad row naming ``where`` and the reason.

    Args:
        record: The decoded JSON value; anything but an object is a bad row.
        where: How to name the record for a person (``"sample.json record 3"``).
        raw: The record's original text, when the caller has it; otherwise it is re-encoded.

    Returns:
        The :class:`SourceShot`, or a :class:`BadRow` when the record cannot be read.
    """
    if not isinstance(record, dict):
        reason = f"expected a JSON object keyed by column name, got {type(record).__name__}"
        return BadRow(where, reason, raw if raw is not None else _dump(record))
    try:
        shot, made = row_to_shot(record)
    except ValueError as exc:
        return BadRow(where, str(exc), raw if raw is not None else _dump(record))
    return SourceShot(shot, made)


def _first_char(handle: Any) -> str:
    """The first non-whitespace character, reading only as far as needed."""
    while chunk := handle.read(4096):
        stripped = chunk.lstrip()
        if stripped:
            return stripped[0]
    return ""


def _dump(record: Any) -> str:
    return json.dumps(record, ensure_ascii=False)
