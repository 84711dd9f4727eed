"""The sink contract: ``add`` records, ``flush`` them durably.

The runner commits Kafka offsets only after ``flush`` returns, and never past a record the sink
holds back, so a failed flush or a crash means the same records are read again and written
again; sinks make that harmless with idempotent writes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

# Where a record was read: (topic, partition, offset).
Position = tuple[str, int, int]


class Sink(ABC):
    @abstractmethod
    def add(
        self, topic: str, key: bytes | None, value: dict[str, Any], position: Position | None = None
    ) -> None:
        """Buffer one decoded record from ``topic``, read at ``position``."""

    @abstractmethod
    def flush(self) -> int:
        """Write everything buffered; return how many records were written.

        Raises on failure, leaving the buffer intact so the caller can retry the flush; offsets
        for the buffered records must not be committed until a flush succeeds.
        """

    @abstractmethod
    def pending(self) -> int:
        """How many records are buffered and due to be written by the next flush."""

    def holding(self) -> dict[tuple[str, int], int]:
        """The earliest offset, per (topic, partition), of records held back for a later flush.

        A sink may keep a record past a flush (the MongoDB sink keeps a prediction until its
        outcome comes, to write both at once); the runner then commits no further than this, so
        a crash reads the held records again instead of losing them."""
        return {}

    def release(self) -> None:
        """Stop holding anything back: the next flush writes every record added (on stop)."""
        return None
