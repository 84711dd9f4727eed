"""Bad input at volume, on the real broker and database: 10,000 fuzzed messages between real shots.

Every bad message must reach ``shots.dlq`` exactly once, with a reason that names what is wrong
and the stage that refused it; every good shot must be scored and stored, labelled; the worker
must still be running at the end.  The published JSON Schemas (``schemas/``) must hold for the
records the worker really wrote.
"""

from __future__ import annotations

import base64
import csv
import json
import random
import time
import uuid
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import jsonschema
import pytest
from confluent_kafka import Consumer, TopicPartition
from pymongo import MongoClient

from parivision import contracts, schemas
from parivision.dlq import ORIGINAL_KEPT
from parivision.rows import row_to_shot
from parivision.schemas import INT_FIELDS
from parivision.sources.base import SourceShot
from parivision.sources.csv_source import CsvSource
from parivision.topics import end_offsets
from producers.replay import kafka_producer
from streams.validate import InvalidRecord, parse_attempt, parse_outcome
from tests.integration.conftest import wait_for_progress

pytestmark = pytest.mark.integration

SEED = 20190409
BAD = 10_000
BAD_OUTCOMES = 1_000  # of the BAD; the rest go to shots.attempts
VIRTUALBETS = 50
NEAR_MEGABYTE = 5
# Enough real shots that every partition sees good and bad records interleaved for the whole
# run; few enough that the test stays well under two minutes on a busy two-core machine.
GOOD = 2_000
HUGE = 200_000

TEXT_FIELDS = (
    "shot_id",
    "player_name",
    "team_name",
    "action_type",
    "shot_zone_basic",
    "shot_zone_area",
    "shot_zone_range",
    "home_team",
    "away_team",
    "season_type",
    "replay_id",
)
REQUIRED = tuple(name for name, field in schemas.Shot.model_fields.items() if field.is_required())
OUTCOME_REQUIRED = ("shot_id", "game_id", "player_id", "made")
NON_FINITE = (float("nan"), float("inf"), float("-inf"), 1e30, -1e30, 1e308)


@dataclass
class Message:
    topic: str  # the schema's topic name: shots.attempts or shots.outcomes
    key: bytes | None
    value: bytes | None
    kind: str
    expect: str = ""  # a piece of the reason the DLQ record must give
    shot_id: str = ""  # a VirtualBets record's shot


def attempt_value(shot: dict, replay_id: str) -> dict:
    """An attempt as producers.replay sends it."""
    return {**shot, "replay_id": replay_id, "produced_at": time.time()}


def outcome_value(shot: dict, made: int, replay_id: str) -> dict:
    """An outcome as producers.replay sends it."""
    return {
        "shot_id": shot["shot_id"],
        "game_id": shot["game_id"],
        "player_id": shot["player_id"],
        "made": made,
        "replay_id": replay_id,
    }


def nested(rng: random.Random, depth: int) -> str:
    opens = "".join(rng.choices("[{", k=depth))
    closes = "".join("]" if c == "[" else "}" for c in reversed(opens))
    return opens.replace("{", '{"a":') + "1" + closes


def junk(rng: random.Random):
    return rng.choice([[[[{"a": [1, {"b": None}]}]]], {"x": {"y": {"z": []}}}, [None, True, "x"]])


def bad_attempt(rng: random.Random, shot: dict, keys: list[bytes | None]) -> Message:
    """One malformed shots.attempts value, and a piece of the reason it must get."""
    kind = rng.choices(
        [
            "random_bytes",
            "empty",
            "truncated",
            "non_finite",
            "huge_string",
            "nested",
            "array",
            "wrong_type",
            "missing",
            "scalar",
            "out_of_range",
        ],
        weights=[12, 4, 12, 14, 1, 8, 6, 16, 14, 4, 5],
    )[0]
    key = rng.choice(keys)
    good = json.dumps(shot)
    if kind == "random_bytes":
        return Message(schemas.ATTEMPTS, key, rng.randbytes(rng.randint(1, 300)), kind)
    if kind == "empty":
        return Message(schemas.ATTEMPTS, key, rng.choice([b"", None]), kind, "empty message")
    if kind == "truncated":
        cut = rng.randint(1, len(good) - 1)
        return Message(schemas.ATTEMPTS, key, good[:cut].encode(), kind, "not valid JSON")
    if kind == "non_finite":
        field = rng.choice([*INT_FIELDS, "produced_at"])
        value = json.dumps({**shot, field: rng.choice(NON_FINITE)}).encode()
        return Message(schemas.ATTEMPTS, key, value, kind, f"{field}: ")
    if kind == "huge_string":
        field = rng.choice(TEXT_FIELDS)
        text = "".join(rng.choices("abcdefghij é€", k=1000)) * (HUGE // 1000)
        value = json.dumps({**shot, field: text}, ensure_ascii=False).encode()
        return Message(schemas.ATTEMPTS, key, value, kind, f"{field}: String should have at most")
    if kind == "nested":
        if rng.random() < 0.5:
            value = nested(rng, rng.randint(300, 3000)).encode()
            return Message(schemas.ATTEMPTS, key, value, kind, "not valid JSON")
        field = rng.choice([*INT_FIELDS, *TEXT_FIELDS, "shot_type"])
        value = json.dumps({**shot, field: junk(rng)}).encode()
        return Message(schemas.ATTEMPTS, key, value, kind, f"{field}: ")
    if kind == "array":
        value = json.dumps(rng.choice([[shot, shot], [], [1, 2, 3], [good]])).encode()
        return Message(schemas.ATTEMPTS, key, value, kind, "record: Input should be an object")
    if kind == "wrong_type":
        field = rng.choice([*INT_FIELDS, *TEXT_FIELDS, "shot_type"])
        if field in INT_FIELDS:
            wrong = rng.choice(["far left", [1], {"v": 1}, True, 12.5, *([None] * 2)])
            if wrong is None and field == "game_event_id":  # the one nullable number
                wrong = "seven"
        else:
            wrong = rng.choice([12, [], {}, True, None])
        value = json.dumps({**shot, field: wrong}).encode()
        return Message(schemas.ATTEMPTS, key, value, kind, f"{field}: ")
    if kind == "missing":
        gone = rng.sample(REQUIRED, rng.randint(1, 3))
        value = json.dumps({k: v for k, v in shot.items() if k not in gone}).encode()
        return Message(schemas.ATTEMPTS, key, value, kind, f"{gone[0]}: Field required")
    if kind == "scalar":
        value = rng.choice([b"null", b"42", b'"a shot"', b"true", b"-1e30", b"NaN"])
        return Message(schemas.ATTEMPTS, key, value, kind, "record: Input should be an object")
    field, wrong = rng.choice(
        [("x", 999), ("y", -300), ("period", 0), ("seconds_remaining", 60), ("game_date", 1)]
    )
    value = json.dumps({**shot, field: wrong}).encode()
    return Message(schemas.ATTEMPTS, key, value, kind, f"{field}: Input should be")


def bad_outcome(rng: random.Random, outcome: dict, key: bytes) -> Message:
    kind = rng.choice(["random_bytes", "empty", "truncated", "made", "missing", "wrong_type"])
    good = json.dumps(outcome)
    if kind == "random_bytes":
        return Message(schemas.OUTCOMES, key, rng.randbytes(rng.randint(1, 100)), kind)
    if kind == "empty":
        return Message(schemas.OUTCOMES, key, b"", kind, "empty message")
    if kind == "truncated":
        cut = rng.randint(1, len(good) - 1)
        return Message(schemas.OUTCOMES, key, good[:cut].encode(), kind, "not valid JSON")
    if kind == "made":
        made = rng.choice([2, -1, float("nan"), 1e30, True, "yes", None, [1]])
        value = json.dumps({**outcome, "made": made}).encode()
        return Message(schemas.OUTCOMES, key, value, kind, "made: ")
    if kind == "missing":
        gone = rng.choice(OUTCOME_REQUIRED)
        value = json.dumps({k: v for k, v in outcome.items() if k != gone}).encode()
        return Message(schemas.OUTCOMES, key, value, kind, f"{gone}: Field required")
    field = rng.choice(["shot_id", "game_id", "player_id", "replay_id", "produced_at"])
    wrong = rng.choice([{"a": 1}, [], "x" * HUGE]) if field != "shot_id" else rng.choice([7, []])
    value = json.dumps({**outcome, field: wrong}).encode()
    return Message(schemas.OUTCOMES, key, value, kind, f"{field}: ")


def virtualbets(row: dict, key: bytes, shot_id: str) -> Message:
    """A row of the original file as the VirtualBets API served it, sent straight to a topic."""
    return Message(
        schemas.ATTEMPTS,
        key,
        json.dumps(row).encode(),
        "virtualbets",
        "shots.attempts expects the Shot schema (schemas/shots.attempts.schema.json)",
        shot_id,
    )


def fuzz(games_csv: Path, replay_id: str) -> tuple[list[Message], dict[str, int]]:
    """Every message of the run in the order it is produced, and each good shot's outcome."""
    rng = random.Random(SEED)
    shots = (item for item in CsvSource(games_csv) if isinstance(item, SourceShot))
    items = list(islice(shots, GOOD + VIRTUALBETS))
    good, spare = items[:GOOD], items[GOOD : GOOD + VIRTUALBETS]
    wanted = {item.shot["shot_id"] for item in spare}
    rows = {}  # the spare shots' rows as the file has them: strings under the 22 column names
    with open(games_csv, newline="") as file:
        for row in csv.DictReader(file):
            shot_id = row_to_shot(row)[0]["shot_id"]
            if shot_id in wanted:
                rows.setdefault(shot_id, row)
                if len(rows) == len(wanted):
                    break
    keys: list[bytes | None] = [str(i.shot["player_id"]).encode() for i in good[:200]]
    keys += [None, b"", b"\xff\xfe", b"not-a-player"]

    attempts_bad = [
        bad_attempt(rng, rng.choice(good).shot, keys)
        for _ in range(BAD - BAD_OUTCOMES - VIRTUALBETS - NEAR_MEGABYTE)
    ]
    attempts_bad += [
        virtualbets(rows[i.shot["shot_id"]], str(i.shot["player_id"]).encode(), i.shot["shot_id"])
        for i in spare
    ]
    for _ in range(NEAR_MEGABYTE):  # a dead letter of it must still fit in a Kafka message
        shot = {**rng.choice(good).shot, "player_name": "n" * 900_000}
        attempts_bad.append(
            Message(
                schemas.ATTEMPTS,
                rng.choice(keys),
                json.dumps(shot).encode(),
                "near_megabyte",
                "player_name: String should have at most",
            )
        )
    rng.shuffle(attempts_bad)
    outcomes_bad = []
    for _ in range(BAD_OUTCOMES):
        item = rng.choice(good)
        outcome = outcome_value(item.shot, item.made, replay_id)
        outcomes_bad.append(bad_outcome(rng, outcome, str(item.shot["player_id"]).encode()))

    # Each good attempt, then its share of the bad messages, then its outcome: every partition
    # carries a mix of both for the whole run.
    messages: list[Message] = []
    made = {}
    a, o = len(attempts_bad), len(outcomes_bad)
    for n, item in enumerate(good):
        key = str(item.shot["player_id"]).encode()
        value = json.dumps(attempt_value(item.shot, replay_id)).encode()
        messages.append(Message(schemas.ATTEMPTS, key, value, "good"))
        messages += attempts_bad[n * a // GOOD : (n + 1) * a // GOOD]
        messages += outcomes_bad[n * o // GOOD : (n + 1) * o // GOOD]
        value = json.dumps(outcome_value(item.shot, item.made, replay_id)).encode()
        messages.append(Message(schemas.OUTCOMES, key, value, "good"))
        made[item.shot["shot_id"]] = item.made
    return messages, made


def produce(settings, messages: list[Message]) -> list[tuple[int, int]]:
    """Send every message in order; return each one's (partition, offset)."""
    producer = kafka_producer(settings)
    where: list[tuple[int, int] | None] = [None] * len(messages)
    errors = []

    def delivered(n):
        def callback(error, message):
            if error is not None:
                errors.append(str(error))
            else:
                where[n] = (message.partition(), message.offset())

        return callback

    for n, message in enumerate(messages):
        while True:
            try:
                producer.produce(
                    settings.topic(message.topic),
                    value=message.value,
                    key=message.key,
                    on_delivery=delivered(n),
                )
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(60) == 0 and not errors, errors[:3]
    assert None not in where
    return where  # type: ignore[return-value]


def read_all(settings, topic: str, count: int, what: str) -> list[bytes]:
    """Every value of a topic from the beginning, once ``count`` of them are there."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka(),
            "group.id": f"fuzz-reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "fetch.message.max.bytes": 2_000_000,
        }
    )
    name = settings.topic(topic)
    partitions = consumer.list_topics(name, timeout=10).topics[name].partitions
    consumer.assign([TopicPartition(name, p, 0) for p in partitions])
    values: list = []
    try:

        def read() -> int:
            values.extend(m for m in consumer.consume(1000, timeout=0.5) if not m.error())
            return len(values)

        wait_for_progress(read, count, what, stall_s=60)
    finally:
        consumer.close()
    return values


def test_ten_thousand_bad_messages_are_dead_lettered_and_every_good_shot_is_scored(
    settings_factory, pipeline, games_csv
):
    settings = settings_factory()
    replay_id = uuid.uuid4().hex[:12]
    messages, made = fuzz(games_csv, replay_id)
    bad = [n for n, m in enumerate(messages) if m.kind != "good"]
    assert len(bad) == BAD and len(made) == GOOD

    # The fuzz is bad by construction; make sure before blaming the worker.
    for n in bad:
        message = messages[n]
        parse = parse_attempt if message.topic == schemas.ATTEMPTS else parse_outcome
        with pytest.raises(InvalidRecord) as refused:
            parse(message.value)
        assert (refused.value.code == "virtualbets_layout") == (message.kind == "virtualbets")

    db = MongoClient(settings.mongodb())[settings.database()]
    labelled = {"outcome": {"$exists": True}}
    dlq = settings.topic(schemas.DLQ)
    with pipeline(settings) as processes:

        def alive(count):
            """``count``, once the stream worker and the sink are known to be running."""

            def check():
                for name, process in processes.items():
                    log = settings.deployment_dir("logs") / f"demo-{name}.log"
                    assert process.poll() is None, f"the {name} process died; see {log}"
                return count()

            return check

        started = time.perf_counter()
        where = produce(settings, messages)
        produced_s = time.perf_counter() - started
        wait_for_progress(alive(lambda: end_offsets(settings, dlq)), BAD, "dead letters")
        dead_s = time.perf_counter() - started
        wait_for_progress(
            alive(lambda: db.predictions.count_documents(labelled)), GOOD, "labelled predictions"
        )
        labelled_s = time.perf_counter() - started
        wait_for_progress(
            alive(lambda: db.shots_raw.count_documents({})), GOOD, "raw attempts stored"
        )
        alive(lambda: None)()  # the worker and the sink survived all of it

    print(
        f"\n{BAD:,} bad + {GOOD:,} good shots ({len(messages):,} messages, "
        f"{sum(len(m.value or b'') for m in messages) / 1e6:.0f} MB) produced in "
        f"{produced_s:.1f}s; every dead letter in {dead_s:.1f}s; every shot labelled "
        f"in {labelled_s:.1f}s"
    )

    # Every bad message, and only those, is in the DLQ exactly once.
    assert end_offsets(settings, dlq) == BAD
    records = [json.loads(v.value()) for v in read_all(settings, schemas.DLQ, BAD, "DLQ")]
    by_source = {(r["source_topic"], r["source_partition"], r["source_offset"]): r for r in records}
    expected = {(settings.topic(messages[n].topic), *where[n]): n for n in bad}
    assert len(by_source) == BAD
    assert set(by_source) == set(expected)

    dlq_schema = jsonschema.Draft202012Validator(
        json.loads((contracts.OUT_DIR / contracts.file_name(schemas.DLQ)).read_text())
    )
    for source, n in expected.items():
        message, record = messages[n], by_source[source]
        stage = "validate-attempt" if message.topic == schemas.ATTEMPTS else "validate-outcome"
        assert record["stage"] == stage
        assert record["reason"].strip()
        assert message.expect in record["reason"], (message.kind, record["reason"])
        raw = message.value or b""
        assert base64.b64decode(record["original_b64"]) == raw[:ORIGINAL_KEPT]
        assert record["original_size"] == len(raw)
        if message.kind == "virtualbets":
            assert f"shot {message.shot_id};" in record["reason"]
            assert "parivision replay" in record["reason"]
        dlq_schema.validate(record)

    # Every good shot scored once, labelled with its real outcome; no bad one scored.
    stored = {
        d["shot_id"]: d["outcome"] for d in db.predictions.find({}, {"shot_id": 1, "outcome": 1})
    }
    assert stored == made
    assert db.predictions.count_documents({}) == GOOD
    # The raw store holds each good attempt as it was sent: a malformed copy of a shot (its id,
    # a broken field) is the stream's to dead-letter and must not overwrite it.
    sent = [
        json.loads(m.value) for m in messages if m.kind == "good" and m.topic == schemas.ATTEMPTS
    ]
    raw = {d["shot_id"]: d for d in db.shots_raw.find({}, {"_id": 0, "received_at": 0})}
    assert raw == {attempt["shot_id"]: attempt for attempt in sent}

    # What the worker published on shots.scored is what the published schema says.
    scored_schema = jsonschema.Draft202012Validator(
        json.loads((contracts.OUT_DIR / contracts.file_name(schemas.SCORED)).read_text())
    )
    scored = [json.loads(v.value()) for v in read_all(settings, schemas.SCORED, 2 * GOOD, "scored")]
    assert sum(r["labelled"] for r in scored) == GOOD
    for record in scored[::10]:  # one in ten of each kind is plenty, and quick
        scored_schema.validate(record)
