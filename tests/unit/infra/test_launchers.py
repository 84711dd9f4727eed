"""The launchers' decisions that need no running service: jar fetching, pid files, ports, errors."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from infra import kafka, mongodb
from infra.process import LocalProcess, redact_uri, split_host_port
from infra.services import ServiceError, up
from parivision.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def settings_factory(tmp_path):
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
    settings_factory, tmp_path, monkeypatch
):
    bin_dir = tmp_path / "bin"
    fake_mvn(
        bin_dir,
        out_dir_from_args() + '\nmkdir -p "$OUT"\n'
        'touch "$OUT/kafka_2.13-4.1.1.jar" "$OUT/kafka-tools-4.1.1.jar"',
    )
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    settings = settings_factory()

    libs = kafka.ensure_jars(settings)
    again = kafka.ensure_jars(settings)

    assert libs == again == tmp_path / "cache" / "kafka-4.1.1" / "libs"
    assert (libs / "kafka_2.13-4.1.1.jar").is_file()
    assert (bin_dir / "calls").read_text().count("called") == 1
    assert sorted(p.name for p in libs.parent.iterdir()) == ["libs"]  # no temp folder left


def test_a_failed_fetch_leaves_nothing_that_looks_like_jars(
    settings_factory, tmp_path, monkeypatch
):
    bin_dir = tmp_path / "bin"
    # Half the jars, then a failure: a later run must not take the half for the whole.
    fake_mvn(
        bin_dir,
        out_dir_from_args() + '\nmkdir -p "$OUT"\ntouch "$OUT/kafka_2.13-4.1.1.jar"\n'
        'echo "[ERROR] Could not resolve dependencies: network is unreachable"\nexit 1',
    )
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    settings = settings_factory()

    with pytest.raises(ServiceError) as error:
        kafka.ensure_jars(settings)

    message = str(error.value)
    assert "Kafka" in message and "network is unreachable" in message
    assert "what to do" in message
    assert list((tmp_path / "cache" / "kafka-4.1.1").iterdir()) == []


def test_without_maven_the_error_says_to_install_it(settings_factory, monkeypatch):
    monkeypatch.setattr(kafka.shutil, "which", lambda name: None)
    with pytest.raises(ServiceError, match=r"Maven \(`mvn`\) is not installed") as error:
        kafka.ensure_jars(settings_factory())
    assert "PARIVISION_KAFKA_BOOTSTRAP" in str(error.value)


def test_broker_config_listens_on_loopback_only(settings_factory):
    settings = settings_factory()
    text = kafka.server_properties(settings)
    lines = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "#")
    assert lines["listeners"] == (
        f"PLAINTEXT://127.0.0.1:{settings.kafka_port},"
        f"CONTROLLER://127.0.0.1:{settings.kafka_controller_port}"
    )
    assert lines["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{settings.kafka_port}"
    assert lines["offsets.topic.replication.factor"] == "1"


def test_a_stale_pid_file_is_removed_and_a_recycled_pid_is_not_ours(tmp_path):
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    process = LocalProcess("x", tmp_path / "x.pid", tmp_path / "x.log", marker="no-such-marker")

    process.pid_file.write_text(f"{finished.pid}\n")
    assert process.read_pid() is None and not process.pid_file.exists()

    process.pid_file.write_text(f"{os.getpid()}\n")  # alive, but not the service
    assert process.read_pid() is None and not process.pid_file.exists()
    assert process.stop(timeout=1) is False  # and so it is never signalled


def test_a_busy_port_stops_up_before_anything_starts(settings_factory):
    settings = settings_factory()
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
