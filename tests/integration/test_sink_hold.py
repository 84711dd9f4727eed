"""The sink holds a prediction until its outcome comes, and a crash while it holds loses nothing.

A prediction and its outcome stored with one insert is what keeps the store up (an update costs
it far more), so the sink keeps each prediction back for ``sink_label_wait_s``.  The danger is the
commit: a sink that committed past the predictions it held, then died, would never read them
again.  Here a real sink process (real Kafka, real MongoDB server) reads scored records, stores
the labelled ones and holds the rest, and is killed with SIGKILL; a new sink must store every
held prediction, and the outcomes that come after.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from pymongo import MongoClient

from parivision import schemas
from parivision.cli.processes import start_process, stop_process, wait_for_group
from parivision.topics import ensure_topics
from tests.integration.conftest import make_settings, wait_for_progress, wait_until

pytestmark = pytest.mark.integration

SHOTS = 200


def _scored(n: int) -> dict:
    now = time.time()
    return {
        "shot_id": f"g1-{n}",
        "game_id": 1,
        "player_id": n % 17,
        "replay_id": "hold",
        "model_version": "1",
        "p_champion": 0.4,
        "p_online": 0.45,
        "features": {"shot_distance": float(n % 30)},
        "produced_at": now,
        "scored_at": now,
        "labelled": False,
    }


def _label(n: int) -> dict:
    return {
        **{k: v for k, v in _scored(n).items() if k not in ("features", "scored_at")},
        "labelled": True,
        "outcome": n % 2,
        "labelled_at": time.time(),
    }


def _send(settings, records: list[dict]) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka()})
    topic = settings.topic(schemas.SCORED)
    for record in records:
        producer.produce(topic, key=str(record["player_id"]).encode(), value=json.dumps(record))
    assert producer.flush(30) == 0


def _committed(settings) -> int:
    """How many records of shots.scored the sink's group has committed (-1: none yet)."""
    topic = settings.topic(schemas.SCORED)
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka(), "group.id": settings.sink_consumer_group()}
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        offsets = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        committed = [tp.offset for tp in offsets if tp.offset >= 0]
        return sum(committed) if committed else -1
    finally:
        consumer.close()


def test_a_sink_killed_while_it_holds_predictions_stores_them_after_a_restart(services):
    endpoints, _ = services
    settings = make_settings(services, sink_label_wait_s=3600.0)
    ensure_topics(settings)
    db = MongoClient(endpoints.mongodb)[settings.database()]
    first_half = range(SHOTS // 2)

    sink = start_process(settings, endpoints, "sink", "hold-sink.log")
    try:
        wait_for_group(settings, settings.sink_consumer_group(), {"sink": sink})
        # Every shot scored; the first half's outcomes in.
        _send(settings, [_scored(n) for n in range(SHOTS)] + [_label(n) for n in first_half])
        wait_for_progress(
            lambda: db.predictions.count_documents({}), SHOTS // 2, "labelled predictions"
        )
        # The labelled half went in with its outcome, one document a shot with its features;
        # the other half waits for it, not stored at all.
        with_features = {"outcome": {"$exists": True}, "features": {"$exists": True}}
        assert db.shots.count_documents(with_features) == SHOTS // 2
        assert db.shots.count_documents({}) == SHOTS // 2
        # The sink commits after its flushes, but not past what it holds.
        wait_until(lambda: _committed(settings) >= 0, 60, "the sink's first commit")
        assert _committed(settings) < SHOTS + SHOTS // 2, "committed past held predictions"
        os.kill(sink.pid, signal.SIGKILL)
        sink.wait(10)
    finally:
        stop_process(sink)

    # A new sink, waiting only half a second for outcomes: it reads the held records again.
    again = settings.model_copy(update={"sink_label_wait_s": 0.5})
    sink = start_process(again, endpoints, "sink", "hold-sink-2.log")
    try:
        wait_for_progress(
            lambda: db.predictions.count_documents({}), SHOTS, "every prediction stored"
        )
        assert db.predictions.count_documents({"outcome": {"$exists": True}}) == SHOTS // 2
        # Outcomes that come after their prediction was stored are set on it.
        _send(again, [_label(n) for n in range(SHOTS // 2, SHOTS)])
        wait_for_progress(
            lambda: db.predictions.count_documents({"outcome": {"$exists": True}}),
            SHOTS,
            "every prediction with its outcome",
        )
    finally:
        stop_process(sink)
    assert len(db.shots.distinct("shot_id")) == SHOTS == db.predictions.count_documents({})
    assert db.predictions.count_documents({"outcome": 1}) == SHOTS // 2
    stored = db.predictions.find_one({"shot_id": "g1-150"}, {"_id": 0})
    assert stored["p_champion"] == 0.4 and stored["outcome"] == 0 and "stored_at" in stored
