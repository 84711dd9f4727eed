"""The sink contract: ``add`` records, ``flush`` them durably.

The runner commits Kafka offsets only after ``flush`` returns, so a failed flush means the same
records are read again and written again; sinks make that harmless with idempotent writes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class Sink(ABC):
    @abstractmethod
    def add(self, topic: str, key: bytes | None, value: dict[str, Any]) -> None:
        """Buffer one decoded record from ``topic``."""

    @abstractmethod
    def flush(self) -> int:
        """Write everything buffered; return how many records were written.

        Raises on failure, leaving the buffer intact so the caller can retry the flush; offsets
        for the buffered records must not be committed until a flush succeeds.
        """

    @abstractmethod
    def pending(self) -> int:
        """How many records are buffered and not yet flushed."""
