"""A local three-broker KRaft cluster (`parivision up --brokers 3`), and one of its nodes killed.

The module starts a real cluster of its own (three ``java`` processes) under a temporary home,
on ports where all six of its listeners are free.  The node that leads the most partitions of a
topic with three replicas and ``min.insync.replicas=2`` dies by SIGKILL; what a user must find is
that writes with ``acks=all`` and reads go on, with every record once, that the partitions it led
have new leaders, and that the node, started again, is back in every partition's ISR.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
import uuid
from collections import Counter

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from infra import kafka
from infra.process import pid_alive, port_free
from infra.services import ServiceError, down, status, up
from parivision.settings import Settings
from tests.integration.conftest import free_port, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BROKERS = 3
PARTITIONS = 6
RECORDS = 300  # written before the kill, and as many after it


def free_cluster_ports() -> dict[str, int]:
    """A client and a controller port from which every node's (+100 each) is free."""
    while True:
        base = {"kafka_port": free_port(), "kafka_controller_port": free_port()}
        ports = [p + 100 * i for p in base.values() for i in range(BROKERS)]
        if len(set(ports)) == len(ports) and all(p < 65536 and port_free(p) for p in ports):
            return base


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if shutil.which("java") is None:
        pytest.skip("the cluster test runs three local brokers of its own: it needs Java")
    settings = Settings(
        _env_file=None,
        home=tmp_path_factory.mktemp("cluster-home"),
        kafka_brokers=BROKERS,
        mongodb_port=free_port(),
        # Local services even when the environment points at a compose stack.
        kafka_bootstrap=None,
        mongodb_uri=None,
        mlflow_tracking_uri=None,
        **free_cluster_ports(),
    )
    started = time.monotonic()
    try:
        kafka.start(settings)
        print(f"\n{BROKERS} brokers up in {time.monotonic() - started:.1f} s")
        yield settings
    finally:
        kafka.stop(settings)


def partitions(settings: Settings, topic: str) -> dict:
    """Partition id -> its metadata (leader, replicas, isrs) as the cluster answers now."""
    admin = AdminClient({"bootstrap.servers": settings.kafka()})
    return admin.list_topics(topic, timeout=10).topics[topic].partitions


def produce(producer: Producer, topic: str, values: list[bytes]) -> list:
    """Send ``values`` (as keys too) and wait for every delivery; the errors reported."""
    errors: list = []
    for value in values:
        producer.produce(topic, key=value, value=value, on_delivery=lambda e, _m: errors.append(e))
        producer.poll(0)
    assert producer.flush(90) == 0, "records still undelivered after 90 s"
    return [error for error in errors if error is not None]


def read(consumer: Consumer, expected: int, timeout: float = 60.0) -> Counter:
    """How often each value arrived, once ``expected`` distinct ones did; commits as it reads."""
    seen: Counter = Counter()
    deadline = time.monotonic() + timeout
    while len(seen) < expected and time.monotonic() < deadline:
        messages = [m for m in consumer.consume(500, timeout=1.0) if m.error() is None]
        seen.update(m.value() for m in messages)
        if messages:
            consumer.commit(asynchronous=False)
    return seen


def read_log(settings: Settings, topic: str) -> tuple[Counter, int]:
    """Every record in the topic from its first offset, and how many its partitions hold."""
    consumer = Consumer({"bootstrap.servers": settings.kafka(), "group.id": uuid.uuid4().hex})
    try:
        held = sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(PARTITIONS)
        )
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        return read(consumer, held) if held else Counter(), held
    finally:
        consumer.close()


def test_status_shows_one_line_per_node(cluster):
    found = {service.name: service for service in status(cluster)}
    assert "kafka" not in found
    for node in kafka.nodes(cluster):
        line = found[node.name]
        assert (line.address, line.mode, line.state) == (node.address, "local", "running")
        assert line.pid == node.process.read_pid() is not None


def test_a_single_broker_is_refused_while_the_cluster_runs(cluster):
    pids = [pid for _node, pid in kafka.running_nodes(cluster)]
    with pytest.raises(ServiceError) as error:
        up(cluster.model_copy(update={"kafka_brokers": 1}))
    message = str(error.value)
    assert "a cluster of 3 brokers already runs" in message and "`parivision down`" in message
    assert [pid for _node, pid in kafka.running_nodes(cluster)] == pids


def test_up_with_brokers_reuses_the_cluster_and_prints_the_line_to_export(cluster, monkeypatch):
    from typer.testing import CliRunner

    from infra import mongodb
    from parivision.cli import app

    pids = [pid for _node, pid in kafka.running_nodes(cluster)]
    for name in ("KAFKA_BOOTSTRAP", "MONGODB_URI", "MLFLOW_TRACKING_URI", "KAFKA_BROKERS"):
        monkeypatch.delenv(f"PARIVISION_{name}", raising=False)
    env = {
        "PARIVISION_HOME": str(cluster.home),
        "PARIVISION_KAFKA_PORT": str(cluster.kafka_port),
        "PARIVISION_KAFKA_CONTROLLER_PORT": str(cluster.kafka_controller_port),
        "PARIVISION_MONGODB_PORT": str(cluster.mongodb_port),
        "PARIVISION_PROMETHEUS_PORT": "0",
        "PARIVISION_ALERTMANAGER_PORT": "0",
    }
    try:
        result = CliRunner().invoke(app, ["up", "--brokers", str(BROKERS)], env=env)
    finally:
        mongodb.stop(cluster)  # `up` started it; this module is about Kafka
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"kafka    {cluster.local_kafka_bootstrap()}" in lines
    assert f"export PARIVISION_KAFKA_BROKERS={BROKERS}" in lines
    assert [pid for _node, pid in kafka.running_nodes(cluster)] == pids  # reused, not restarted


def test_the_cluster_survives_its_busiest_leader_killed_and_takes_it_back(cluster):
    topic = f"failover-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": cluster.kafka()})
    new = NewTopic(topic, PARTITIONS, BROKERS, config={"min.insync.replicas": "2"})
    admin.create_topics([new])[topic].result(30)
    wait_until(
        lambda: all(p.leader >= 0 for p in partitions(cluster, topic).values()),
        30,
        "every partition to have a leader",
    )
    producer = Producer(
        {"bootstrap.servers": cluster.kafka(), "acks": "all", "enable.idempotence": True}
    )
    consumer = Consumer(
        {
            "bootstrap.servers": cluster.kafka(),
            "group.id": f"g-{topic}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    before = [f"before-{i}".encode() for i in range(RECORDS)]
    after = [f"after-{i}".encode() for i in range(RECORDS)]
    try:
        assert produce(producer, topic, before) == []
        assert read(consumer, RECORDS) == Counter(before)

        # The node leading the most partitions dies without a word.
        leaders = partitions(cluster, topic)
        led = Counter(p.leader for p in leaders.values())
        victim = max(sorted(led), key=led.__getitem__)
        orphaned = sorted(p.id for p in leaders.values() if p.leader == victim)
        controller = admin.describe_cluster().result(10).controller.id
        pid = kafka.node_process(cluster, victim).read_pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        assert wait_until_dead(pid), f"node {victim} (pid {pid}) survived SIGKILL"

        # Writes that need two replicas in sync, and reads, go on without it.
        assert produce(producer, topic, after) == []
        written = time.monotonic() - killed
        assert read(consumer, RECORDS) == Counter(after)
        log, held = read_log(cluster, topic)
        assert held == 2 * RECORDS, f"the topic holds {held} records, not {2 * RECORDS}"
        assert log == Counter(before + after)  # every record once: no retry wrote a copy

        now = partitions(cluster, topic)
        moved = {p: now[p].leader for p in orphaned}
        assert all(leader not in (victim, -1) for leader in moved.values()), moved
        assert all(p.leader != victim for p in now.values())

        # Started again on its own storage, the node catches up and is back in every ISR.
        restarted = time.monotonic()
        kafka.start_node(cluster, victim)
        wait_until(
            lambda: (
                all(victim in p.isrs for p in partitions(cluster, topic).values())
                or {p.id: p.isrs for p in partitions(cluster, topic).values()}
            ),
            60,
            f"node {victim} to be back in every partition's ISR",
        )
        back = time.monotonic() - restarted
    finally:
        producer.flush(10)
        consumer.close()
    print(
        f"\nkilled node {victim} (led partitions {orphaned}; controller was node {controller}): "
        f"{2 * RECORDS} records each read once; new leaders {moved}; writes done "
        f"{written:.1f} s after the kill; back in every ISR {back:.1f} s after its restart"
    )


def wait_until_dead(pid: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_down_stops_every_node_without_being_told_the_size(cluster):
    pids = [pid for _node, pid in kafka.running_nodes(cluster)]
    assert len(pids) == BROKERS

    started = time.monotonic()
    stopped = down(cluster.model_copy(update={"kafka_brokers": 1}))

    print(f"\ndown stopped {BROKERS} brokers in {time.monotonic() - started:.1f} s")
    assert stopped == ["kafka"]
    assert not any(pid_alive(pid) for pid in pids)
    nodes = kafka.nodes(cluster)
    assert all(port_free(port) for n in nodes for port in (n.port, n.controller_port))
    assert not list((cluster.resolved_home() / "run").glob("kafka*.pid"))
