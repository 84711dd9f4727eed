"""The ``shots.dlq`` record: why a record failed, where it came from, and its original bytes.

Part of the topics' contract (:class:`parivision.schemas.DeadLetter`,
``schemas/shots.dlq.schema.json``): the replay dead-letters the rows it cannot read and the
stream worker the records it cannot score, both with :func:`dead_letter`.
"""

from __future__ import annotations

import base64
import json
import time

from parivision.schemas import DeadLetter

# A DLQ record stays well under Kafka's 1 MB message limit whatever came in: the original is
# kept up to ORIGINAL_KEPT bytes (base64 makes it a third larger), and repeated as text only up
# to TEXT_KEPT bytes (JSON may escape a character to six).  An input near the limit would
# otherwise make a dead letter the broker refuses, and stop the worker.
ORIGINAL_KEPT = 256 * 1024
TEXT_KEPT = 64 * 1024
REASON_KEPT = 2000
KEY_KEPT = 1024


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
    """The DLQ value (a :class:`parivision.schemas.DeadLetter`): why it failed, where it came
    from, and the original bytes (base64).

    ``original_text`` is there too when the bytes are UTF-8, so a person can read the record
    without decoding anything.  However large the input, the record stays under Kafka's message
    limit: see :data:`ORIGINAL_KEPT` and :data:`TEXT_KEPT`.
    """
    raw = raw or b""
    kept = raw[:ORIGINAL_KEPT]
    key_text = key.decode("utf-8", "replace") if key else None
    record: DeadLetter = {
        "reason": reason if len(reason) <= REASON_KEPT else reason[:REASON_KEPT] + "...",
        "stage": stage,
        "source_topic": topic,
        "source_partition": partition,
        "source_offset": offset,
        "key": key_text[:KEY_KEPT] if key_text else key_text,
        "original_b64": base64.b64encode(kept).decode("ascii"),
        "original_text": _as_text(raw) if len(raw) <= TEXT_KEPT else None,
        "original_size": len(raw),
        "original_truncated": len(kept) < len(raw),
        "failed_at": time.time(),
    }
    return json.dumps(record).encode()


def _as_text(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
