"""Prometheus's file-based discovery: a process's target file, its labels, its removal."""

from __future__ import annotations

import json
import subprocess
import sys

from infra.targets import PID_LABEL, list_targets, prune, register, targets_dir, unregister
from parivision.settings import Settings


def settings(tmp_path, **values) -> Settings:
    return Settings(_env_file=None, home=tmp_path / "home", **values)


def test_a_target_names_its_deployment_and_address_in_prometheus_s_format(tmp_path):
    s = settings(tmp_path, deployment="west", metrics_host="0.0.0.0")

    path = register(s, "stream", 9201)

    assert path == targets_dir(s) / "stream" / "west-9201.json"
    (target,) = json.loads(path.read_text())
    assert target["targets"] == ["127.0.0.1:9201"]  # where Prometheus reaches a wildcard bind
    assert target["labels"]["deployment"] == "west"
    # Prometheus drops labels that start with "__" after relabelling: the pid is no series label.
    assert {k for k in target["labels"] if not k.startswith("__")} == {"deployment"}
    assert list_targets(s) == [("stream", target)]
    unregister(path)
    assert not path.exists()


def test_a_process_removes_its_target_when_it_exits_but_not_one_written_after_it(tmp_path):
    s = settings(tmp_path)
    code = (
        "import sys; from pathlib import Path; from infra.targets import register; "
        "from parivision.settings import Settings; "
        f"s = Settings(_env_file=None, home=Path({str(tmp_path / 'home')!r})); "
        "print(register(s, 'sink', 9102).exists())"
    )
    child = subprocess.run([sys.executable, "-c", code], check=True, text=True, capture_output=True)
    assert child.stdout.strip() == "True"  # it was there while the process ran
    assert list_targets(s) == []

    path = register(s, "sink", 9102)  # this process's own, same name
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from pathlib import Path; from infra.targets import unregister; "
            f"unregister(Path({str(path)!r}))",
        ],
        check=True,
    )
    assert path.exists()  # another process cannot remove what this one wrote
    unregister(path)


def test_down_clears_only_the_targets_of_processes_that_are_gone(tmp_path):
    s = settings(tmp_path, deployment="a")
    alive = register(s, "stream", 9101)
    dead = targets_dir(s) / "sink" / "a-9102.json"
    dead.parent.mkdir(parents=True)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    dead.write_text(
        json.dumps(
            [
                {
                    "targets": ["127.0.0.1:9102"],
                    "labels": {"deployment": "a", PID_LABEL: gone.stdout.strip()},
                }
            ]
        )
    )

    assert prune(s) == [dead]
    assert alive.exists() and not dead.exists()
    unregister(alive)


def test_the_api_removes_its_target_when_it_shuts_down(tmp_path):
    from contextlib import asynccontextmanager

    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from parivision.cli.serve import _unregister_at_shutdown

    ran = []

    @asynccontextmanager
    async def lifespan(app):
        ran.append("started")
        yield
        ran.append("stopped")

    app = FastAPI(lifespan=lifespan)
    path = register(settings(tmp_path), "api", 8080)
    _unregister_at_shutdown(app, path)

    with TestClient(app):
        assert path.exists() and ran == ["started"]
    assert not path.exists()
    assert ran == ["started", "stopped"]  # the app's own lifespan still ran whole
