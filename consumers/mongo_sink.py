"""MongoDB sink: each shot's attempt (bronze), features (silver) and prediction with its outcome
(gold) as one document.

The document is the store's contract (:mod:`parivision.store`).  Its ``_id`` is the shot id, so
reading a record twice (at-least-once delivery, a replay of the same shots) leaves one document:
the first write inserts, a later one updates it in place.  New shots take the fast path (one
unordered ``insert_many``); only the duplicates it reports are turned into updates.

A shot's parts come as three records on two topics: its attempt (``shots.attempts``), its
prediction and, once its outcome is in, the labelled prediction (``shots.scored``).  The sink
keeps a shot's parts until its prediction and outcome are in (its attempt came before them),
or for ``label_wait_s`` from the first, so the shot is stored with one insert: an update costs
the local server about five times an insert.  While it waits the runner commits no offset past
any of them (:meth:`MongoSink.holding`).  A part that comes later is set on the stored
document by an update.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pymongo import MongoClient, UpdateOne
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError

from consumers.base import Position, Sink
from consumers.store_layout import ensure_layout
from parivision import schemas
from parivision.metrics import SINK, Metrics, for_job
from parivision.store import SHOTS, shot_document

DUPLICATE_KEY = 11000
# How long one write waits for an unreachable server before it fails and the runner retries
# with backoff.  pymongo's default (30 s) would block a write through a whole outage, with no
# error logged or counted, and a SIGTERM unanswered for as long.  Only server selection: a
# socket timeout would also cut a slow bulk write short on a busy server, and retry it forever.
SERVER_SELECTION_TIMEOUT_MS = 5000


def connect(uri: str) -> MongoClient:
    """A client for the sink: a write to a server that is away fails in seconds, not 30 s.

    A ``serverSelectionTimeoutMS`` in the URI wins (pymongo lets a keyword override it).
    """
    if "serverselectiontimeoutms=" in uri.lower():
        return MongoClient(uri)
    return MongoClient(uri, serverSelectionTimeoutMS=SERVER_SELECTION_TIMEOUT_MS)


@dataclass
class Parts:
    """What has come of one shot: its attempt, its prediction, its label, and where each was
    read."""

    since: float
    raw: dict[str, Any] | None = None
    scored: dict[str, Any] | None = None
    label: dict[str, Any] | None = None
    positions: list[Position] = field(default_factory=list)

    def complete(self) -> bool:
        """Whether the shot can be stored: its prediction and its outcome are in.  The attempt
        comes before both (it is produced before the stream sees it), so it is normally in
        too; one that is not is set on the stored shot when it comes."""
        return self.scored is not None and self.label is not None

    def document(self, now: float) -> dict[str, Any]:
        return shot_document(self.raw, self.scored, self.label, now)


def upsert_many(collection: Collection, docs: Iterable[dict[str, Any]]) -> tuple[int, int]:
    """Insert documents keyed by ``_id``; set the fields of the ones that already exist.

    Returns how many were inserted and how many updated.
    """
    by_id: dict[str, dict[str, Any]] = {}
    for doc in docs:
        # Within one batch the last version of a shot wins, as it would across batches.
        by_id.setdefault(doc["_id"], {}).update(doc)
    if not by_id:
        return 0, 0
    batch = list(by_id.values())
    try:
        collection.insert_many([dict(d) for d in batch], ordered=False)
        return len(batch), 0
    except BulkWriteError as error:
        write_errors = error.details.get("writeErrors", [])
        others = [e for e in write_errors if e.get("code") != DUPLICATE_KEY]
        if others:
            raise
        duplicates = [batch[e["index"]] for e in write_errors]
    updates = [UpdateOne({"_id": d["_id"]}, _update(d), upsert=True) for d in duplicates]
    collection.bulk_write(updates, ordered=False)
    return len(batch) - len(duplicates), len(duplicates)


def _update(doc: dict[str, Any]) -> dict[str, Any]:
    """What a write sets on a shot stored already.

    ``stored_at`` says when the shot's prediction was stored: a write that brings only its
    attempt or its outcome leaves it.  ``outcome_stored_at`` keeps the first time the outcome
    was stored, so an outcome delivered twice (after a crash) is not new to a reader polling
    for new outcomes.
    """
    fields = {
        k: v
        for k, v in doc.items()
        if k not in ("_id", "outcome_stored_at") and (k != "stored_at" or "scored_at" in doc)
    }
    update: dict[str, Any] = {"$set": fields}
    if "outcome_stored_at" in doc:
        update["$min"] = {"outcome_stored_at": doc["outcome_stored_at"]}
    return update


class MongoSink(Sink):
    """Gathers each shot's records from ``shots.attempts`` and ``shots.scored`` and writes the
    shots in batches, one document each."""

    def __init__(
        self,
        client: MongoClient,
        database: str,
        *,
        topic_prefix: str = "",
        metrics: Metrics | None = None,
        label_wait_s: float = 0.0,
    ) -> None:
        self.db = client[database]
        self.label_wait_s = label_wait_s
        self.metrics = metrics or for_job(SINK)
        self.attempts_topic = f"{topic_prefix}{schemas.ATTEMPTS}"
        self.scored_topic = f"{topic_prefix}{schemas.SCORED}"
        ensure_layout(self.db)
        # Each shot's parts, in the order their first part came.
        self._held: dict[str, Parts] = {}
        self._complete: set[str] = set()
        self.written = 0

    def add(
        self, topic: str, key: bytes | None, value: dict[str, Any], position: Position | None = None
    ) -> None:
        if "shot_id" not in value:
            return  # the stream dead-letters malformed attempts; nothing here to key on
        shot_id = value["shot_id"]
        now = time.time()
        if topic == self.attempts_topic:
            try:
                schemas.Shot.model_validate(value)
            except schemas.ValidationError:
                return  # dead-lettered by the stream; a broken copy must not overwrite a shot
        elif topic != self.scored_topic:
            return
        parts = self._held.get(shot_id)
        if parts is None:
            parts = self._held[shot_id] = Parts(since=now)
        if topic == self.attempts_topic:
            parts.raw = {**value, "received_at": now}
        elif value.get("labelled"):
            parts.label = value
        else:
            parts.scored = value
        if position is not None:
            parts.positions.append(position)
        if parts.complete():
            self._complete.add(shot_id)

    def _due(self, now: float) -> list[str]:
        """The shots to write now: complete ones, and the ones whose first part has waited
        ``label_wait_s`` (the oldest; all of them when the sink does not wait)."""
        if not self.label_wait_s:
            return list(self._held)
        due = list(self._complete)
        for shot_id, parts in self._held.items():
            if now - parts.since < self.label_wait_s:
                break
            if shot_id not in self._complete:
                due.append(shot_id)
        return due

    def holding(self) -> dict[tuple[str, int], int]:
        earliest: dict[tuple[str, int], int] = {}
        for parts in self._held.values():
            for topic, partition, offset in parts.positions:
                at = earliest.get((topic, partition))
                if at is None or offset < at:
                    earliest[(topic, partition)] = offset
        return earliest

    def release(self) -> None:
        self.label_wait_s = 0.0

    def pending(self) -> int:
        return len(self._held) if not self.label_wait_s else len(self._due(time.time()))

    def flush(self) -> int:
        now = time.time()
        due = self._due(now)
        if not due:
            return 0
        shots = [self._held[shot_id] for shot_id in due]
        started = time.perf_counter()
        inserted, updated = upsert_many(self.db[SHOTS], [parts.document(now) for parts in shots])
        written = inserted + updated
        self.metrics["write_seconds"].labels(collection=SHOTS).observe(
            time.perf_counter() - started
        )
        # Shots stored; a part set on a shot stored before (a late outcome, a record read
        # twice) is written but not stored again.
        self.metrics["stored"].labels(collection=SHOTS).inc(inserted)
        latency = self.metrics["e2e_latency"]
        for parts in shots:
            produced = (parts.scored or {}).get("produced_at")
            if isinstance(produced, int | float):
                latency.observe(max(0.0, now - produced))
        # Only once the write is in: a failed flush keeps everything for the retry.
        for shot_id in due:
            del self._held[shot_id]
        self._complete.difference_update(due)
        self.written += written
        return written
