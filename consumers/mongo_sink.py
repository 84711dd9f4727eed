"""MongoDB sink: raw shots (bronze), features (silver) and predictions with outcomes (gold).

The collections and their documents are the store's contract (:mod:`parivision.store`).

Every write is keyed on the shot id with a unique index, so reading a record twice (at-least-once
delivery, a replay of the same shots) leaves one document: the first write inserts, a later one
updates it in place.  New shots take the fast path (one unordered ``insert_many``); only the
duplicates it reports are turned into updates.

A prediction waits up to ``label_wait_s`` for its outcome (which follows it on the same
partition), so the two are stored with one insert: an update costs the store far more than an
insert (the local server does about 1,400 updates/s against 20,000 inserts/s).  While it waits the
runner commits no offset past it (:meth:`MongoSink.holding`).  An outcome that comes later is set
on the stored prediction by an upsert.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from pymongo import ASCENDING, MongoClient, UpdateOne
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError

from consumers.base import Position, Sink
from parivision import schemas
from parivision.metrics import SINK, Metrics, for_job
from parivision.store import (
    LABELLED_AT_INDEX,
    PREDICTIONS,
    RAW,
    SHOTS,
    features_document,
    label_fields,
)

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


def ensure_indexes(db) -> None:
    """Unique shot ids everywhere; replay and game indexes for the queries people run; and the
    times the retrain loop polls on (what was stored, what was labelled since it last looked),
    so a poll reads what is new rather than the whole store."""
    for name in (RAW, SHOTS, PREDICTIONS):
        db[name].create_index([("shot_id", ASCENDING)], unique=True, name="shot_id_unique")
        db[name].create_index([("replay_id", ASCENDING)], name="replay_id")
    for field in ("game_id", "player_id", "team_id", "scored_at"):
        db[PREDICTIONS].create_index([(field, ASCENDING)], name=field)
    db[PREDICTIONS].create_index(**LABELLED_AT_INDEX)
    db[SHOTS].create_index([("stored_at", ASCENDING)], name="stored_at")


def upsert_many(collection: Collection, docs: Iterable[dict[str, Any]]) -> int:
    """Insert documents keyed by ``shot_id``; update the ones that already exist.

    Returns the number of documents written (inserted or updated).
    """
    by_id: dict[str, dict[str, Any]] = {}
    for doc in docs:
        # Within one batch the last version of a shot wins, as it would across batches.
        by_id.setdefault(doc["shot_id"], {}).update(doc)
    if not by_id:
        return 0
    batch = list(by_id.values())
    try:
        collection.insert_many([dict(d) for d in batch], ordered=False)
        return len(batch)
    except BulkWriteError as error:
        write_errors = error.details.get("writeErrors", [])
        others = [e for e in write_errors if e.get("code") != DUPLICATE_KEY]
        if others:
            raise
        duplicates = [batch[e["index"]] for e in write_errors]
    updates = [UpdateOne({"shot_id": d["shot_id"]}, {"$set": d}, upsert=True) for d in duplicates]
    collection.bulk_write(updates, ordered=False)
    return len(batch)


class MongoSink(Sink):
    """Buffers records from ``shots.attempts`` and ``shots.scored`` and writes them in batches."""

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
        ensure_indexes(self.db)
        self._raw: list[dict[str, Any]] = []
        self._features: list[dict[str, Any]] = []
        self._predictions: list[dict[str, Any]] = []
        self._labels: list[dict[str, Any]] = []
        # Predictions waiting for their outcome, oldest first: shot id -> (document, where it
        # was read, when it came).
        self._held: dict[str, tuple[dict[str, Any], Position | None, float]] = {}
        self.written = 0

    def add(
        self, topic: str, key: bytes | None, value: dict[str, Any], position: Position | None = None
    ) -> None:
        if "shot_id" not in value:
            return  # the stream dead-letters malformed attempts; nothing here to key on
        now = time.time()
        if topic == self.attempts_topic:
            try:
                schemas.Shot.model_validate(value)
            except schemas.ValidationError:
                return  # dead-lettered by the stream; a broken copy must not overwrite a shot
            self._raw.append({**value, "received_at": now})
        elif topic == self.scored_topic and value.get("labelled"):
            held = self._held.pop(value["shot_id"], None)
            if held is not None:
                self._predictions.append(held[0])  # the label rides along with its insert
            self._labels.append(value)
        elif topic == self.scored_topic:
            features = value.pop("features", {})
            self._features.append(features_document(value, features, now))
            if self.label_wait_s > 0:
                self._held.pop(value["shot_id"], None)  # read again: keep its place fresh
                self._held[value["shot_id"]] = (value, position, now)
            else:
                self._predictions.append(value)

    def _due(self, now: float) -> int:
        """How many held predictions have waited ``label_wait_s`` (they are the oldest)."""
        due = 0
        for _doc, _position, since in self._held.values():
            if now - since < self.label_wait_s:
                break
            due += 1
        return due

    def holding(self) -> dict[tuple[str, int], int]:
        earliest: dict[tuple[str, int], int] = {}
        for _doc, position, _since in self._held.values():
            if position is not None:
                topic, partition, offset = position
                at = earliest.get((topic, partition))
                if at is None or offset < at:
                    earliest[(topic, partition)] = offset
        return earliest

    def release(self) -> None:
        self.label_wait_s = 0.0
        self._predictions.extend(doc for doc, _position, _since in self._held.values())
        self._held.clear()

    def _timed(self, collection: str, write, *args, count: bool = True) -> int:
        """Run one bulk write, timing it and counting what it stored by collection."""
        if not args[-1]:
            return 0
        started = time.perf_counter()
        written = write(*args)
        self.metrics["write_seconds"].labels(collection=collection).observe(
            time.perf_counter() - started
        )
        if count:
            self.metrics["stored"].labels(collection=collection).inc(written)
        return written

    def pending(self) -> int:
        buffered = len(self._raw) + len(self._features) + len(self._predictions)
        return buffered + len(self._labels) + (self._due(time.time()) if self._held else 0)

    def flush(self) -> int:
        now = time.time()
        for _ in range(self._due(now) if self._held else 0):
            shot_id = next(iter(self._held))
            self._predictions.append(self._held.pop(shot_id)[0])
        labels = {label["shot_id"]: label_fields(label, now) for label in self._labels}
        predictions = [{**p, "stored_at": now} for p in self._predictions]
        if labels:
            # A label whose prediction is in this same batch rides along with its insert: one
            # write instead of two, which is what keeps the store up with a fast replay.
            predictions = [
                {**p, **labels.pop(p["shot_id"])} if p["shot_id"] in labels else p
                for p in predictions
            ]
        written = self._timed(RAW, upsert_many, self.db[RAW], self._raw)
        written += self._timed(SHOTS, upsert_many, self.db[SHOTS], self._features)
        written += self._timed(PREDICTIONS, upsert_many, self.db[PREDICTIONS], predictions)
        if labels:
            # Labels come after their prediction on the same partition, so the prediction is
            # normally stored already; upsert keeps the label even if it is not.
            # Timed, but not counted as stored: the prediction was counted when it was written.
            self._timed(PREDICTIONS, _set_labels, self.db[PREDICTIONS], labels, count=False)
        written += len(self._labels)
        latency = self.metrics["e2e_latency"]
        for prediction in self._predictions:
            produced = prediction.get("produced_at")
            if isinstance(produced, int | float):
                latency.observe(max(0.0, now - produced))
        self._raw, self._features, self._predictions, self._labels = [], [], [], []
        self.written += written
        return written


def _set_labels(collection: Collection, labels: dict[str, dict[str, Any]]) -> int:
    collection.bulk_write(
        [
            UpdateOne({"shot_id": shot_id}, {"$set": fields}, upsert=True)
            for shot_id, fields in labels.items()
        ],
        ordered=False,
    )
    return len(labels)
