"""MongoDB stopped for 30 s in the middle of a replay, and started again on the same data.

Real 2018-19 shots in game order at a fixed rate.  The test runs a MongoDB server of its own
(the session's server is shared by every test) with the sink and the API pointed at it.  A
quarter of the way in the server goes away (a clean stop), stays away for 30 s while the replay
goes on and the shots pile up in Kafka, then starts again on the same files and port.  Nobody
restarts anything else.  What a user must find: the API's ``/health`` answering 503 with the
database named while MongoDB is away and 200 again once it is back; the sink still running,
its offsets not committed past what it wrote while nothing could be written; and afterwards
every shot stored once with its outcome, its raw copy and its features.
"""

from __future__ import annotations

import dataclasses
import time

import httpx
import pytest
from confluent_kafka import ConsumerGroupTopicPartitions
from confluent_kafka.admin import AdminClient
from pymongo import MongoClient

from infra import mongodb
from parivision import schemas
from parivision.cli.processes import start_process, stop_process, wait_for_group
from parivision.sources.csv_source import CsvSource
from parivision.topics import end_offsets, ensure_topics
from tests.integration.conftest import BackgroundReplay, free_port, wait_for_progress, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SHOTS = 3000
RATE = 200.0  # shots per second: a 15 s replay
OUTAGE_S = 30.0  # how long MongoDB stays down
WRITE_ERRORS = "parivision_mongo_write_errors_total"  # the sink's failed (and retried) writes
TOPICS = (schemas.ATTEMPTS, schemas.SCORED)  # what the sink reads


@pytest.fixture
def database(services, tmp_path):
    """A MongoDB server of this test's own, under its tmp folder, on a port of its own."""
    _, base = services
    settings = base.model_copy(
        update={"home": tmp_path / "mongo", "mongodb_uri": None, "mongodb_port": free_port()}
    )
    mongodb.start(settings)
    try:
        yield settings
    finally:
        mongodb.stop(settings)


def committed(settings) -> int:
    """The sink group's committed offsets, summed over the partitions it has committed."""
    admin = AdminClient({"bootstrap.servers": settings.kafka()})
    group = settings.sink_consumer_group()
    answer = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])
    return sum(max(tp.offset, 0) for tp in answer[group].result(10).topic_partitions)


def in_topics(settings) -> int:
    """Everything in the topics the sink reads."""
    return sum(end_offsets(settings, settings.topic(topic)) for topic in TOPICS)


def write_errors(settings) -> float:
    """The sink's failed writes, from its metrics endpoint."""
    text = httpx.get(f"http://127.0.0.1:{settings.sink_metrics_port}/metrics", timeout=10).text
    return sum(
        float(line.split()[-1]) for line in text.splitlines() if line.startswith(WRITE_ERRORS)
    )


def health(base: str) -> tuple[int, dict]:
    try:
        response = httpx.get(f"{base}/health", timeout=15)
        return response.status_code, response.json()
    except (httpx.HTTPError, ValueError) as error:
        return 0, {"error": str(error)}


def test_a_mongodb_outage_mid_replay_loses_nothing_and_health_says_so(
    services, settings_factory, champion_version, games_csv, database
):
    endpoints, _ = services
    uri = database.local_mongodb_uri()
    endpoints = dataclasses.replace(endpoints, mongodb=uri)
    settings = settings_factory(mongodb_uri=uri, sink_metrics_port=free_port())
    ensure_topics(settings)
    db = MongoClient(uri, serverSelectionTimeoutMS=5000)[settings.database()]
    logs = settings.deployment_dir("logs")
    log_names = {
        name: f"mongo-outage-{name}-{settings.app_id}.log" for name in ("stream", "sink", "serve")
    }
    base = f"http://127.0.0.1:{settings.api_port}"
    processes: dict = {}

    def running() -> None:
        # Nobody restarts them: a process that exits has failed the test already.
        for name, process in processes.items():
            if process.poll() is not None:
                tail = (logs / log_names[name]).read_text()[-3000:]
                raise AssertionError(f"the {name} process exited ({process.returncode}):\n{tail}")

    def stored() -> int:
        running()
        return db.predictions.count_documents({})

    def written() -> int:  # raw shots are the first thing each of the sink's flushes writes
        running()
        return db.shots_raw.count_documents({})

    def labelled() -> int:
        running()
        return db.predictions.count_documents({"outcome": {"$exists": True}})

    def healthy():
        running()
        status, body = health(base)
        return (status == 200 and body.get("status") == "ok") or (status, body)

    def database_named_down():
        running()
        status, body = health(base)
        return (status == 503 and body.get("failing") == ["database"]) or (status, body)

    for name in log_names:
        processes[name] = start_process(settings, endpoints, name, log_names[name])
    try:
        wait_for_group(settings, settings.stream_group(), processes)
        wait_for_group(settings, settings.sink_consumer_group(), processes)
        wait_until(healthy, 120, "the API to report every service healthy", interval=0.5)
        sender = BackgroundReplay(settings, CsvSource(games_csv), rate=RATE, limit=SHOTS)

        # A quarter sent (by the replay, whose pace is fixed, not by the sink, which may be
        # anywhere on a busy machine), with predictions being stored: MongoDB goes away.
        attempts = settings.topic(schemas.ATTEMPTS)
        wait_until(lambda: end_offsets(settings, attempts) >= SHOTS // 4, 120, "a quarter sent")
        wait_until(lambda: stored() > 0, 120, "predictions stored", 0.2)
        errors_before = write_errors(settings)
        assert mongodb.stop(database), "the test's MongoDB server was not running"
        down_at = time.monotonic()
        assert sender.is_alive(), "the replay was over before the outage"

        # The API says so, naming the database, within the outage.
        wait_until(database_named_down, OUTAGE_S - 5, "/health to report the database down", 0.5)
        noticed_s = time.monotonic() - down_at
        _, body = health(base)
        detail = body["checks"]["database"]["detail"]
        assert "MongoDB" in detail and "unreachable" in detail, detail
        assert body["status"] == "degraded"
        assert body["checks"]["broker"]["ok"] and body["checks"]["registry"]["ok"], body

        # Nothing can be written, so nothing may be committed: the shots wait in Kafka.  The
        # sink keeps trying, every few seconds with growing delays, and stays up.
        committed_in_outage = committed(settings)
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
        running()
        assert committed(settings) == committed_in_outage, "the sink committed what it never wrote"
        assert committed_in_outage < in_topics(settings), "nothing was waiting for MongoDB"
        retries = write_errors(settings) - errors_before
        assert retries >= 3, f"{retries:.0f} failed writes in {OUTAGE_S:.0f} s: no retries"

        mongodb.start(database)
        back_at = time.monotonic()
        written_at_restart, stored_at_restart = written(), stored()
        print(
            f"\nMongoDB down for {back_at - down_at:.1f} s (incl. restart) at "
            f"{stored_at_restart} stored; /health said so after {noticed_s:.1f} s; "
            f"{retries:.0f} failed writes"
        )

        # Nothing restarted: the sink writes again and the API is healthy again on their own.
        wait_until(lambda: written() > written_at_restart, 120, "the sink to write again", 0.1)
        sink_back = time.monotonic() - back_at
        wait_until(lambda: stored() > stored_at_restart, 120, "the sink to store predictions")
        stored_back = time.monotonic() - back_at
        wait_until(healthy, 120, "/health to report every service healthy again", 0.5)
        health_back = time.monotonic() - back_at
        print(
            f"sink wrote again {sink_back:.1f} s, stored predictions {stored_back:.1f} s, "
            f"/health ok {health_back:.1f} s after the restart"
        )

        stats = sender.result()
        wait_for_progress(labelled, SHOTS, "stored predictions with their outcome")
        caught_up = time.monotonic() - back_at
        # And it commits again, up to everything it has read.
        wait_until(
            lambda: (
                committed(settings) == in_topics(settings)
                or (committed(settings), in_topics(settings))
            ),
            120,
            "the sink to commit everything it wrote",
        )
        running()
        print(f"every shot stored with its outcome {caught_up:.1f} s after the restart")
    finally:
        for process in processes.values():
            stop_process(process)

    assert stats.produced == SHOTS
    # Every shot stored once, with its outcome, its raw copy and its features.
    assert db.predictions.count_documents({}) == SHOTS
    assert len(db.shots.distinct("shot_id")) == SHOTS
    assert db.predictions.count_documents({"outcome": {"$exists": True}}) == SHOTS
    assert db.shots_raw.count_documents({}) == SHOTS
    assert db.shots.count_documents({}) == SHOTS
    assert len(db.shots.distinct("shot_id")) == SHOTS
    assert all(doc["features"] for doc in db.shots.find({}, {"features": 1})), "empty features"
