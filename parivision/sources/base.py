"""The source contract: a source yields shots (with their outcome when it knows it) or bad rows.

A new source is one new module with one class that subclasses :class:`Source`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class SourceShot:
    """One shot read from a source.

    ``shot`` holds the :class:`parivision.schemas.Shot` fields (including ``shot_id``, without
    ``replay_id`` and ``produced_at``, which the producer stamps); ``made`` is the outcome, 1 or 0,
    or ``None`` when the source does not know it.
    """

    shot: dict[str, Any]
    made: int | None


@dataclass(slots=True)
class BadRow:
    """A record the source could not read; reported, never silently dropped.

    ``where`` names it for a person (``"nba.csv line 17"``), ``reason`` says what is wrong and
    ``raw`` keeps the original text so it can be sent to the dead-letter topic.
    """

    where: str
    reason: str
    raw: str


class Source(ABC):
    """Yields :class:`SourceShot` and :class:`BadRow` items in the order the shots were taken."""

    name: str = "source"

    @abstractmethod
    def __iter__(self) -> Iterator[SourceShot | BadRow]: ...
