"""The live path end to end on the real broker and database: replay -> stream -> sink."""

from __future__ import annotations

import json

import pytest
from confluent_kafka import Consumer, Producer
from pymongo import MongoClient

from parivision import schemas
from parivision.sources.csv_source import CsvSource
from producers.pacing import MaxPacer
from producers.replay import replay
from tests.integration.conftest import wait_for_progress, wait_until
from tests.samples import GOOD_SHOT

pytestmark = pytest.mark.integration


SHOTS = 5_000


def _db(settings):
    return MongoClient(settings.mongodb())[settings.database()]


def test_five_thousand_real_shots_are_stored_once_even_when_replayed_twice(
    settings_factory, pipeline, champion_version, games_csv
):
    settings = settings_factory()
    db = _db(settings)
    labelled = {"outcome": {"$exists": True}}
    # 5,000 rather than 20,000: the point is that a second replay adds nothing, and the suite
    # must stay well under 20 minutes on a busy two-core machine (the store writes ~500/s);
    # bench/faults.py and test_metrics carry larger replays.
    with pipeline(settings):
        first = replay(
            settings, CsvSource(games_csv), pacer=MaxPacer(), limit=SHOTS, show_progress=False
        )
        assert first.produced == SHOTS and first.outcomes == SHOTS
        wait_for_progress(
            lambda: db.predictions.count_documents(labelled), SHOTS, "labelled predictions"
        )

        second = replay(
            settings, CsvSource(games_csv), pacer=MaxPacer(), limit=SHOTS, show_progress=False
        )
        wait_for_progress(
            lambda: db.predictions.count_documents({"replay_id": second.replay_id, **labelled}),
            SHOTS,
            "the second replay's labelled predictions",
        )

    assert db.predictions.count_documents({}) == SHOTS
    assert db.shots_raw.count_documents({}) == SHOTS
    assert db.shots.count_documents({}) == SHOTS
    bad_probability = {"$or": [{"p_champion": {"$lte": 0}}, {"p_champion": {"$gte": 1}}]}
    assert db.predictions.count_documents(bad_probability) == 0
    assert db.predictions.count_documents({"model_version": champion_version}) == SHOTS
    # The stored outcome is the real one from the file, for every shot.
    truth = {}
    for item in CsvSource(games_csv):
        truth[item.shot["shot_id"]] = item.made
        if len(truth) == SHOTS:
            break
    stored = {
        d["shot_id"]: d["outcome"] for d in db.predictions.find({}, {"shot_id": 1, "outcome": 1})
    }
    assert stored == truth
    # Features were stored for each shot, with the columns the model was trained on.
    first_item = next(iter(CsvSource(games_csv)))
    doc = db.shots.find_one({"shot_id": first_item.shot["shot_id"]})
    assert doc["features"]["distance_m"] == pytest.approx(first_item.shot["shot_distance"] * 0.3048)


GOOD = GOOD_SHOT
PLAYER_KEY = str(GOOD["player_id"]).encode()  # both input topics are keyed by player


def _malformed(i: int) -> bytes:
    kind = i % 5
    if kind == 0:
        return b'{"shot_id": "broken-' + str(i).encode() + b'", '  # truncated JSON
    if kind == 1:
        shot = {**GOOD, "shot_id": f"m-{i}"}
        del shot["player_id"]
        return json.dumps(shot).encode()
    if kind == 2:
        return json.dumps({**GOOD, "shot_id": f"m-{i}", "x": "far left"}).encode()
    if kind == 3:
        return json.dumps({**GOOD, "shot_id": f"m-{i}", "x": 900, "y": -300}).encode()
    return bytes([0xFF, 0xFE, i % 256])  # not even text


def test_malformed_messages_reach_the_dlq_with_a_reason_and_good_shots_keep_flowing(
    settings_factory, pipeline
):
    settings = settings_factory()
    producer = Producer({"bootstrap.servers": settings.kafka()})
    attempts = settings.topic(schemas.ATTEMPTS)
    outcomes = settings.topic(schemas.OUTCOMES)
    db = _db(settings)
    with pipeline(settings):
        for i in range(500):
            producer.produce(attempts, key=PLAYER_KEY, value=_malformed(i))
            if i % 10 == 0:  # a good shot between the bad ones
                good = {**GOOD, "shot_id": f"21800001-{1000 + i}", "game_event_id": 1000 + i}
                producer.produce(attempts, key=PLAYER_KEY, value=json.dumps(good).encode())
                producer.produce(
                    outcomes,
                    key=PLAYER_KEY,
                    value=json.dumps(
                        {
                            "shot_id": good["shot_id"],
                            "game_id": 21800001,
                            "player_id": GOOD["player_id"],
                            "made": i % 2,
                        }
                    ).encode(),
                )
        assert producer.flush(30) == 0
        wait_until(
            lambda: db.predictions.count_documents({"outcome": {"$exists": True}}) == 50,
            120,
            "the 50 good shots to be scored and labelled",
        )

    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka(),
            "group.id": "dlq-reader",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([settings.topic(schemas.DLQ)])
    dead = []
    wait_until(
        lambda: (
            dead.extend(m for m in consumer.consume(500, timeout=1) if not m.error())
            or len(dead) >= 500
        ),
        60,
        "500 dead letters",
    )
    consumer.close()
    records = [json.loads(m.value()) for m in dead]
    assert len(records) == 500
    assert all(r["reason"] and r["source_topic"] == attempts for r in records)
    reasons = " | ".join(r["reason"] for r in records)
    for expected in (
        "not valid JSON",
        "player_id: Field required",
        "x: Input should be a valid integer",
        "x: Input should be less than or equal to 250",
    ):
        assert expected in reasons
    # Every original is kept, byte for byte.
    import base64

    originals = sorted(base64.b64decode(r["original_b64"]) for r in records)
    assert originals == sorted(_malformed(i) for i in range(500))
    assert db.predictions.count_documents({"shot_id": {"$regex": "^m-"}}) == 0
