"""`up` / `down` on the real services: a Kafka broker, a MongoDB server and the MLflow store.

These start their own local services on free ports under a temporary home (whatever the
environment says), so they test the launchers themselves rather than the session's services.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack

import pytest

from infra.mlflow_store import configure_mlflow
from infra.process import pid_alive, port_free
from infra.services import ServiceError, down, status, up
from parivision.settings import Settings

pytestmark = pytest.mark.integration


def free_ports(n: int) -> list[int]:
    with ExitStack() as stack:  # hold all sockets at once so the ports differ
        sockets = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


def local_settings(home, **overrides) -> Settings:
    kafka_port, controller_port, mongodb_port = free_ports(3)
    values = {
        "home": home,
        "kafka_port": kafka_port,
        "kafka_controller_port": controller_port,
        "mongodb_port": mongodb_port,
        # Local services even when the environment points at a compose stack.
        "kafka_bootstrap": None,
        "mongodb_uri": None,
        "mlflow_tracking_uri": None,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def pids(settings: Settings) -> dict[str, int]:
    run = settings.resolved_home() / "run"
    return {name: int((run / f"{name}.pid").read_text()) for name in ("kafka", "mongodb")}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    settings = local_settings(tmp_path_factory.mktemp("services-home"))
    try:
        endpoints = up(settings)
        yield settings, endpoints
    finally:
        down(settings)


def test_kafka_round_trips_a_message(stack):
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    _, endpoints = stack
    topic = f"t-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": endpoints.kafka})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(20)

    producer = Producer({"bootstrap.servers": endpoints.kafka})
    producer.produce(topic, key=b"shot-1", value=b'{"made": true}')
    assert producer.flush(20) == 0

    consumer = Consumer(
        {"bootstrap.servers": endpoints.kafka, "group.id": topic, "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    try:
        deadline, message = time.monotonic() + 20, None
        while message is None and time.monotonic() < deadline:
            message = consumer.poll(0.5)
    finally:
        consumer.close()
    assert message is not None and message.error() is None
    assert (message.key(), message.value()) == (b"shot-1", b'{"made": true}')


def test_mongodb_stores_and_finds_a_document(stack):
    from pymongo import MongoClient

    _, endpoints = stack
    with MongoClient(endpoints.mongodb, serverSelectionTimeoutMS=5000) as client:
        collection = client[f"t{uuid.uuid4().hex[:8]}"].shots
        collection.insert_one({"_id": "0021900001-7", "made": True})
        assert collection.find_one({"_id": "0021900001-7"}) == {"_id": "0021900001-7", "made": True}


def test_mlflow_store_keeps_a_run_and_its_artifacts_under_home(stack):
    import mlflow
    from mlflow import MlflowClient

    settings, endpoints = stack
    assert configure_mlflow(settings) == endpoints.mlflow
    with mlflow.start_run() as run:
        mlflow.log_metric("log_loss", 0.612)
        mlflow.log_text("hello", "note.txt")

    stored = MlflowClient(tracking_uri=endpoints.mlflow).get_run(run.info.run_id)
    assert stored.data.metrics["log_loss"] == pytest.approx(0.612)
    experiment = MlflowClient(tracking_uri=endpoints.mlflow).get_experiment(run.info.experiment_id)
    assert experiment.name == settings.experiment()
    artifacts = settings.mlflow_artifact_root()
    assert list(artifacts.rglob("note.txt")), f"no artifact under {artifacts}"


def test_up_again_reuses_the_running_services(stack):
    settings, first = stack
    before = pids(settings)

    again = up(settings)

    assert sorted(first.started) == ["kafka", "mlflow", "mongodb"]
    assert again.started == [] and sorted(again.reused) == ["kafka", "mlflow", "mongodb"]
    assert pids(settings) == before
    assert (again.kafka, again.mongodb, again.mlflow) == (first.kafka, first.mongodb, first.mlflow)


def test_down_stops_what_up_started_and_frees_the_ports(tmp_path):
    settings = local_settings(tmp_path / "home")
    # A pid file left by a crashed run, naming a process that no longer exists.
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    run = settings.resolved_home() / "run"
    run.mkdir(parents=True)
    (run / "kafka.pid").write_text(f"{gone.pid}\n")

    try:
        endpoints = up(settings)
        assert sorted(endpoints.started) == ["kafka", "mlflow", "mongodb"]
        started = pids(settings)
        assert all(pid_alive(pid) for pid in started.values())
        assert {s.name: s.state for s in status(settings)} == {
            "kafka": "running",
            "mongodb": "running",
            "mlflow": "ready",
        }
    finally:
        stopped = down(settings)

    assert sorted(stopped) == ["kafka", "mongodb"]
    assert not any(pid_alive(pid) for pid in started.values())
    ports = (settings.kafka_port, settings.kafka_controller_port, settings.mongodb_port)
    assert all(port_free(port) for port in ports)
    assert not list(run.glob("*.pid"))
    assert {s.name: s.state for s in status(settings)}["kafka"] == "stopped"
    assert down(settings) == []


@pytest.mark.parametrize(
    ("setting", "service", "address"),
    [
        ("kafka_bootstrap", "Kafka", "127.0.0.1:{port}"),
        ("mongodb_uri", "MongoDB", "mongodb://127.0.0.1:{port}/?journal=true"),
        ("mlflow_tracking_uri", "MLflow", "http://127.0.0.1:{port}"),
    ],
)
def test_an_external_service_that_does_not_answer_is_named_with_its_address(
    tmp_path, setting, service, address
):
    (port,) = free_ports(1)  # nothing listens there
    settings = local_settings(tmp_path / "home", **{setting: address.format(port=port)})

    started = time.monotonic()
    with pytest.raises(ServiceError) as error:
        up(settings)

    message = str(error.value)
    assert message.startswith(f"{service} at {address.format(port=port)}")
    assert "not reachable" in message and "what to do" in message
    assert time.monotonic() - started < 10
    assert not list((tmp_path / "home" / "run").glob("*.pid"))  # nothing local was started
