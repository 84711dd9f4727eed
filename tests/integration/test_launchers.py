"""The launchers on this machine's ports: a port already taken stops ``up`` before anything
starts and names who holds it; a cluster of another size, or a single broker, running under the
same home is found by its pid files and refused by name.  Nothing here needs the session's
services, but every test binds real ports, which unit tests may not."""

from __future__ import annotations

import io
import os
import socket
import sys

import pytest
from rich.console import Console

from infra import kafka, mongodb, services
from infra.monitoring import PROMETHEUS
from infra.process import pid_alive, port_free
from infra.services import Endpoints, ServiceError, up
from parivision.settings import Settings

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_cluster_ports(brokers: int) -> dict[str, int]:
    """A client and a controller port from which every node's (+100 each) is free."""
    while True:
        base = {"kafka_port": free_port(), "kafka_controller_port": free_port()}
        ports = [p + 100 * i for p in base.values() for i in range(brokers)]
        if len(set(ports)) == len(ports) and all(p < 65536 and port_free(p) for p in ports):
            return base


@pytest.fixture
def local_settings(tmp_path):
    """Settings for a home of the test's own on free ports, with no service configured."""

    def make(**overrides) -> Settings:
        values = {
            "home": tmp_path / "home",
            "kafka_cache": tmp_path / "cache",
            "kafka_port": free_port(),
            "kafka_controller_port": free_port(),
            "mongodb_port": free_port(),
            "kafka_bootstrap": None,
            "mongodb_uri": None,
            "mlflow_tracking_uri": None,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


def test_a_taken_port_of_node_2_is_named_with_its_knob(local_settings):
    settings = local_settings(kafka_brokers=3, **free_cluster_ports(3))
    taken = settings.kafka_controller_port + 100
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        with pytest.raises(ServiceError) as error:
            up(settings)
    message = str(error.value)
    assert f"the controller port 127.0.0.1:{taken} of node 2 (kafka-2) is already in use" in message
    assert "PARIVISION_KAFKA_CONTROLLER_PORT (node 2 uses it + 100)" in message
    assert f"pid {os.getpid()}" in message
    assert mongodb.local_process(settings).read_pid() is None  # MongoDB was not started


def stand_in(settings, node_id: int) -> int:
    """A process that passes for node ``node_id`` of ``settings``' Kafka (its pid file, and its
    server.properties on its command line), without Java."""
    process = kafka.node_process(settings, node_id)
    argv = [sys.executable, "-c", "import time; time.sleep(120)", process.marker]
    return process.spawn(argv, cwd=settings.resolved_home())


def test_a_cluster_of_another_size_is_refused_by_name_and_stopped_by_down(local_settings):
    from infra.services import down

    one = local_settings(**free_cluster_ports(3))
    three = one.model_copy(update={"kafka_brokers": 3})
    pids = [stand_in(three, n) for n in (1, 2, 3)]
    try:
        assert [(n.name, pid) for n, pid in kafka.running_nodes(one)] == [
            ("kafka-1", pids[0]),
            ("kafka-2", pids[1]),
            ("kafka-3", pids[2]),
        ]
        with pytest.raises(ServiceError) as error:
            up(one)
        message = str(error.value)
        assert "a cluster of 3 brokers already runs" in message
        assert "export PARIVISION_KAFKA_BROKERS=3" in message and "`parivision down`" in message
        assert kafka.running_pid(three) == pids[0]  # the refusal left its pid files alone
    finally:
        stopped = down(one)  # the settings say one broker: down stops the three all the same
    assert stopped == ["kafka"]
    assert not any(pid_alive(pid) for pid in pids)
    assert not list((one.resolved_home() / "run").glob("kafka*.pid"))


def test_a_cluster_is_refused_while_a_single_broker_runs(local_settings):
    one = local_settings(**free_cluster_ports(3))
    three = one.model_copy(update={"kafka_brokers": 3})
    pid = stand_in(one, 1)
    try:
        with pytest.raises(ServiceError, match="a single broker already runs") as error:
            kafka.start(three)
        assert "`parivision up --brokers 3`" in str(error.value)
        assert kafka.running_pid(one) == pid
    finally:
        assert kafka.stop(three)  # the settings say three: stop finds the single broker
    assert not pid_alive(pid)


def test_a_busy_port_stops_up_before_anything_starts(local_settings):
    settings = local_settings()
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", settings.kafka_port))
        squatter.listen()
        with pytest.raises(ServiceError) as error:
            up(settings)
    message = str(error.value)
    assert message.startswith(f"Kafka at 127.0.0.1:{settings.kafka_port}")
    assert "already in use" in message and "PARIVISION_KAFKA_PORT" in message
    assert f"pid {os.getpid()}" in message  # it names who holds the port
    assert mongodb.local_process(settings).read_pid() is None  # MongoDB was not started


def test_a_taken_port_skips_prometheus_without_starting_it(local_settings):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        settings = local_settings(
            prometheus_port=port, alertmanager_port=0, alerts_webhook_url=None
        )

        out = io.StringIO()
        endpoints = Endpoints(kafka="", mongodb="", mlflow="")
        services._up_monitoring(settings, Console(file=out, width=300), endpoints)
        said = out.getvalue()

    assert endpoints.started == [] and "prometheus" not in endpoints.monitoring
    assert "already in use" in endpoints.skipped["prometheus"]
    assert "PARIVISION_PROMETHEUS_PORT" in said
    assert PROMETHEUS.local_process(settings).read_pid() is None
