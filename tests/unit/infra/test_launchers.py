"""The launchers' decisions that need no running service and open no port: jar fetching,
configuration files, pid files, errors (the tests that bind ports are in
tests/integration/test_launchers.py)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from infra import kafka
from infra.process import LocalProcess, redact_uri, split_host_port
from infra.services import ServiceError
from parivision.settings import Settings


def properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "#")


@pytest.fixture
def local_settings(tmp_path):
    def make(**overrides) -> Settings:
        values = {
            "home": tmp_path / "home",
            "kafka_cache": tmp_path / "cache",
            # Nothing listens on these and nothing binds them: no test here starts a service.
            "kafka_port": 39092,
            "kafka_controller_port": 39093,
            "mongodb_port": 37017,
            "kafka_bootstrap": None,
            "mongodb_uri": None,
            "mlflow_tracking_uri": None,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


def fake_mvn(folder: Path, script: str) -> Path:
    """An ``mvn`` on PATH that runs ``script`` (sh) and counts its calls in ``calls``."""
    folder.mkdir(parents=True, exist_ok=True)
    mvn = folder / "mvn"
    mvn.write_text(f'#!/bin/sh\necho called >> "{folder}/calls"\n{script}\n')
    mvn.chmod(mvn.stat().st_mode | stat.S_IEXEC)
    return mvn


def out_dir_from_args() -> str:
    # The fake finds -DoutputDirectory=... among its arguments, as the real one does.
    return 'for a in "$@"; do case "$a" in -DoutputDirectory=*) OUT="${a#*=}";; esac; done'


def test_jars_are_fetched_once_and_then_served_from_the_cache(
    local_settings, tmp_path, monkeypatch
):
    bin_dir = tmp_path / "bin"
    fake_mvn(
        bin_dir,
        out_dir_from_args() + '\nmkdir -p "$OUT"\n'
        'touch "$OUT/kafka_2.13-4.1.1.jar" "$OUT/kafka-tools-4.1.1.jar"',
    )
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    settings = local_settings()

    libs = kafka.ensure_jars(settings)
    again = kafka.ensure_jars(settings)

    assert libs == again == tmp_path / "cache" / "kafka-4.1.1" / "libs"
    assert (libs / "kafka_2.13-4.1.1.jar").is_file()
    assert (bin_dir / "calls").read_text().count("called") == 1
    assert sorted(p.name for p in libs.parent.iterdir()) == ["libs"]  # no temp folder left


def test_a_failed_fetch_leaves_nothing_that_looks_like_jars(local_settings, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    # Half the jars, then a failure: a later run must not take the half for the whole.
    fake_mvn(
        bin_dir,
        out_dir_from_args() + '\nmkdir -p "$OUT"\ntouch "$OUT/kafka_2.13-4.1.1.jar"\n'
        'echo "[ERROR] Could not resolve dependencies: network is unreachable"\nexit 1',
    )
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    settings = local_settings()

    with pytest.raises(ServiceError) as error:
        kafka.ensure_jars(settings)

    message = str(error.value)
    assert "Kafka" in message and "network is unreachable" in message
    assert "what to do" in message
    assert list((tmp_path / "cache" / "kafka-4.1.1").iterdir()) == []


def test_without_maven_the_error_says_to_install_it(local_settings, monkeypatch):
    monkeypatch.setattr(kafka.shutil, "which", lambda name: None)
    with pytest.raises(ServiceError, match=r"Maven \(`mvn`\) is not installed") as error:
        kafka.ensure_jars(local_settings())
    assert "PARIVISION_KAFKA_BOOTSTRAP" in str(error.value)


def test_broker_config_listens_on_loopback_only(local_settings):
    settings = local_settings()
    text = kafka.server_properties(settings)
    lines = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "#")
    assert lines["listeners"] == (
        f"PLAINTEXT://127.0.0.1:{settings.kafka_port},"
        f"CONTROLLER://127.0.0.1:{settings.kafka_controller_port}"
    )
    assert lines["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{settings.kafka_port}"
    assert lines["offsets.topic.replication.factor"] == "1"


def test_one_broker_keeps_its_folder_files_and_configuration(local_settings):
    settings = local_settings()
    home, port, cport = (
        settings.resolved_home(),
        settings.kafka_port,
        settings.kafka_controller_port,
    )
    (node,) = kafka.nodes(settings)

    assert (node.name, node.directory) == ("kafka", home / "kafka")
    assert node.process.pid_file == home / "run" / "kafka.pid"
    assert node.process.log_file == home / "logs" / "kafka.log"
    assert kafka.local_process(settings) == node.process
    # What the single broker was told before clusters existed, and Kafka's defaults for the
    # two lines a cluster added.
    assert properties(kafka.server_properties(settings)) == {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{cport}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(home / "kafka" / "data"),
        "num.partitions": str(settings.partitions),
        "auto.create.topics.enable": "true",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "group.initial.rebalance.delay.ms": "0",
        "num.network.threads": "1",
        "num.io.threads": "2",
        "background.threads": "2",
        "group.coordinator.threads": "1",
        "share.coordinator.threads": "1",
    }


def test_three_nodes_each_get_their_ports_folder_files_and_the_same_voters(local_settings):
    settings = local_settings(kafka_port=21000, kafka_controller_port=23000, kafka_brokers=3)
    home = settings.resolved_home()
    nodes = kafka.nodes(settings)

    voters = "1@127.0.0.1:23000,2@127.0.0.1:23100,3@127.0.0.1:23200"
    for node, port, cport in zip(nodes, (21000, 21100, 21200), (23000, 23100, 23200), strict=True):
        n = node.node_id
        lines = properties(kafka.server_properties(settings, n))
        assert lines["node.id"] == str(n)
        assert lines["controller.quorum.voters"] == voters
        assert lines["listeners"] == f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}"
        assert lines["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{port}"
        assert lines["log.dirs"] == str(home / "kafka-3-brokers" / f"node-{n}" / "data")
        assert node.process.pid_file == home / "run" / f"kafka-{n}.pid"
        assert node.process.log_file == home / "logs" / f"kafka-{n}.log"
        assert node.name == f"kafka-{n}" and node.address == f"127.0.0.1:{port}"
    folders = {node.directory for node in nodes}
    assert len(folders) == 3 and home / "kafka" not in folders  # never the single broker's
    assert settings.local_kafka_bootstrap() == ",".join(node.address for node in nodes)
    assert kafka.node_process(settings, 2) == nodes[1].process
    with pytest.raises(ValueError, match="no node 4"):
        kafka.node_process(settings, 4)


@pytest.mark.parametrize(
    ("brokers", "replicas", "in_sync"), [(1, 1, 1), (2, 2, 1), (3, 3, 2), (5, 3, 2)]
)
def test_replicas_are_three_at_most_and_two_in_sync_from_three_nodes(
    local_settings, brokers, replicas, in_sync
):
    settings = local_settings(kafka_brokers=brokers)
    for node in kafka.nodes(settings):
        lines = properties(kafka.server_properties(settings, node.node_id))
        for topic in ("offsets.topic", "transaction.state.log", "share.coordinator.state.topic"):
            assert lines[f"{topic}.replication.factor"] == str(replicas), topic
        assert lines["default.replication.factor"] == str(replicas)
        assert lines["transaction.state.log.min.isr"] == str(in_sync)
        assert lines["share.coordinator.state.topic.min.isr"] == str(in_sync)
        assert lines["min.insync.replicas"] == str(in_sync)
        assert len(lines["controller.quorum.voters"].split(",")) == brokers


def test_a_stale_pid_file_is_removed_and_a_recycled_pid_is_not_ours(tmp_path):
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    process = LocalProcess("x", tmp_path / "x.pid", tmp_path / "x.log", marker="no-such-marker")

    process.pid_file.write_text(f"{finished.pid}\n")
    assert process.read_pid() is None and not process.pid_file.exists()

    process.pid_file.write_text(f"{os.getpid()}\n")  # alive, but not the service
    assert process.read_pid() is None and not process.pid_file.exists()
    assert process.stop(timeout=1) is False  # and so it is never signalled


def test_mongodb_password_never_reaches_a_message():
    uri = "mongodb://app:s3cret@db.example:27017/?authSource=admin"
    assert redact_uri(uri) == "mongodb://app:***@db.example:27017/?authSource=admin"
    assert redact_uri("mongodb://127.0.0.1:27027/?journal=true") == (
        "mongodb://127.0.0.1:27027/?journal=true"
    )


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:19092", ("127.0.0.1", 19092)),
        ("kafka", ("kafka", 9092)),
        ("PLAINTEXT://broker:29092", ("broker", 29092)),
        ("[::1]:9093", ("::1", 9093)),
    ],
)
def test_split_host_port(address, expected):
    assert split_host_port(address, 9092) == expected
