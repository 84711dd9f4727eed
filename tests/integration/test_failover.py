"""A broker killed with ``kill -9`` mid-replay, on a local three-broker cluster, left dead.

What a user who outgrew one machine must find: every topic PariVision made has three copies
(two needed for a write), the replay, the stream and the sink ride out the failover on their
own, every shot is stored once with its outcome, no shot is scored or labelled twice on
``shots.scored``, and scoring resumes within seconds of the kill.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType
from pymongo import MongoClient

from infra import kafka
from parivision import schemas
from parivision.cli.processes import start_process, stop_process, wait_for_group
from parivision.settings import Settings
from parivision.sources.csv_source import CsvSource
from parivision.topics import describe, end_offsets, ensure_topics
from tests.integration.conftest import (
    BackgroundReplay,
    ScoredReader,
    make_settings,
    wait_for_progress,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SHOTS = 6000
RATE = 400.0  # shots per second: a 15 s replay, the kill 5 s in


def _free_base() -> tuple[int, int]:
    """A client port and a controller port whose three nodes' ports (steps of 100) are free."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + 201 > 65535:
            continue
        ports = [base + 100 * n + k for n in range(3) for k in (0, 1)]
        free = True
        for port in ports:
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    free = False
                    break
        if free:
            return base, base + 1
    raise RuntimeError("no free block of ports for a three-broker cluster")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    port, controller_port = _free_base()
    settings = Settings(
        home=tmp_path_factory.mktemp("cluster-home"),
        kafka_brokers=3,
        kafka_port=port,
        kafka_controller_port=controller_port,
    )
    kafka.start(settings)
    try:
        yield settings
    finally:
        kafka.stop(settings)


def _leaders(bootstrap: str, topic: str) -> Counter:
    """Broker id -> how many of ``topic``'s partitions it leads."""
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=10)
    return Counter(p.leader for p in metadata.topics[topic].partitions.values())


def _min_insync(bootstrap: str, topic: str) -> int:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource(ResourceType.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(10)
    return int(configs["min.insync.replicas"].value)


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_a_broker_killed_mid_replay_loses_nothing_and_scores_nothing_twice(
    services, cluster, champion_version, games_csv, guarantee
):
    endpoints, _ = services
    bootstrap = cluster.local_kafka_bootstrap()
    settings = make_settings(services, kafka_bootstrap=bootstrap, processing_guarantee=guarantee)
    on_cluster = dataclasses.replace(endpoints, kafka=bootstrap)
    ensure_topics(settings)
    attempts = settings.topic(schemas.ATTEMPTS)
    for name in (attempts, settings.topic(schemas.SCORED), settings.topic(schemas.OUTCOMES)):
        assert _min_insync(bootstrap, name) == 2, name

    db = MongoClient(settings.mongodb())[settings.database()]
    processes = {
        "sink": start_process(settings, on_cluster, "sink", f"failover-sink-{settings.app_id}.log"),
        "stream": start_process(
            settings, on_cluster, "stream", f"failover-stream-{settings.app_id}.log"
        ),
    }
    reader = ScoredReader(settings)
    victim_pid = None
    try:
        wait_for_group(settings, settings.stream_group(), processes)
        wait_for_group(settings, settings.sink_consumer_group(), processes)
        # The worker made its changelogs, with as many copies as the topics.
        copies = {topic.name: topic.replicas for topic in describe(settings)}
        changelogs = [name for name in copies if name.startswith(settings.stream_group())]
        assert len(changelogs) == 2 and set(copies.values()) == {3}, copies

        sender = BackgroundReplay(settings, CsvSource(games_csv), rate=RATE, limit=SHOTS)
        wait_until(lambda: end_offsets(settings, attempts) >= SHOTS // 3, 120, "a third sent", 0.2)
        victim = _leaders(bootstrap, attempts).most_common(1)[0][0]
        victim_pid = kafka.node_process(cluster, victim).read_pid()
        os.kill(victim_pid, signal.SIGKILL)
        killed_at = time.time()
        # Each partition the dead broker led gets a new leader, among the living.
        wait_until(lambda: victim not in _leaders(bootstrap, attempts), 60, "new leaders")

        stats = sender.result(timeout=600)
        assert stats.produced == SHOTS
        wait_for_progress(
            lambda: db.predictions.count_documents({"outcome": {"$exists": True}}),
            SHOTS,
            "stored predictions with their outcome after the broker was killed",
        )
        wait_for_progress(reader.read, SHOTS, "labelled records on shots.scored")
        for name, process in processes.items():
            assert process.poll() is None, f"the {name} died during the failover"
    finally:
        reader.close()
        for process in processes.values():
            stop_process(process)
        if victim_pid is not None:
            kafka.start_node(cluster, victim)  # the next test finds the cluster whole

    # Every shot stored once, with its outcome.
    assert db.predictions.count_documents({}) == SHOTS
    assert len(db.shots.distinct("shot_id")) == SHOTS
    # On the topic: each shot scored once and labelled once.
    assert len(reader.scored) == SHOTS and len(reader.labelled) == SHOTS
    for what, counts in (("scored", reader.scored), ("labelled", reader.labelled)):
        twice = [shot for shot, n in counts.items() if n > 1]
        assert not twice, f"{len(twice)} shots {what} more than once: {twice[:5]}"
    # Scoring resumed within seconds of the kill: the first shot produced after it was scored.
    after = list(
        db.predictions.find(
            {"produced_at": {"$gt": killed_at}}, {"produced_at": 1, "scored_at": 1}
        ).sort("produced_at", 1)
    )
    assert after, "no shot was produced after the kill"
    waits = [doc["scored_at"] - doc["produced_at"] for doc in after]
    print(
        f"\n{guarantee}: broker {victim} killed; the first shot produced after it was scored in "
        f"{waits[0]:.2f} s; the slowest after it in {max(waits):.2f} s"
    )
    # Kafka declares the broker dead after 9 s and then elects leaders (and, exactly once,
    # moves the transaction coordinator): 13-15 s here, 21-23 s with a second three-broker
    # cluster busy on the same two cores.  Exactly once, librdkafka may hang in the commit
    # after the kill (streams/transactions.py, HUNG_AFTER_S): the worker restarts, and scores
    # again after the watchdog's 40 s and a table recovery.
    from streams.transactions import HUNG_AFTER_S

    assert waits[0] < (45.0 if guarantee == "at_least_once" else HUNG_AFTER_S + 60.0)


def test_status_shows_each_topics_copies_and_warns_where_one_broker_would_lose_data(
    services, cluster
):
    from confluent_kafka.admin import NewTopic

    from parivision.topics import replication_factor

    endpoints, base = services
    bootstrap = cluster.local_kafka_bootstrap()
    settings = make_settings(services, kafka_bootstrap=bootstrap)
    # The cluster's default (3, from its three brokers) unless the setting says otherwise, and
    # never more copies than brokers; one broker gives one copy.
    assert replication_factor(settings) == 3
    assert replication_factor(settings.model_copy(update={"kafka_replication_factor": 2})) == 2
    with pytest.raises(ValueError, match="has 3 broker"):
        replication_factor(settings.model_copy(update={"kafka_replication_factor": 4}))
    single = make_settings(services)
    assert replication_factor(single) == 1
    # A topic made by hand with one copy, beside the ones PariVision makes.
    lonely = settings.topic(schemas.DLQ)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(lonely, num_partitions=1, replication_factor=1)])[lonely].result(
        30
    )
    assert ensure_topics(settings)  # the others
    env = {
        **os.environ,
        "PARIVISION_HOME": str(cluster.resolved_home()),
        "PARIVISION_KAFKA_BROKERS": "3",
        "PARIVISION_KAFKA_PORT": str(cluster.kafka_port),
        "PARIVISION_KAFKA_CONTROLLER_PORT": str(cluster.kafka_controller_port),
        "PARIVISION_TOPIC_PREFIX": settings.prefix(),
        "PARIVISION_MONGODB_URI": endpoints.mongodb,
        "PARIVISION_MLFLOW_TRACKING_URI": endpoints.mlflow,
    }
    shown = subprocess.run(
        [sys.executable, "-m", "parivision", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    lines = {line.split()[0]: line for line in shown.stdout.splitlines() if line.startswith("  ")}
    assert "topics on 3 broker(s):" in shown.stdout, shown.stdout
    for name in (schemas.ATTEMPTS, schemas.OUTCOMES, schemas.SCORED, schemas.MODEL_EVENTS):
        line = lines[settings.topic(name)]
        assert "3 copies" in line and "WARNING" not in line, line
    assert "1 copy  WARNING: one copy on a cluster of 3 brokers" in lines[lonely], lines[lonely]
