"""Starting the pipeline's processes with this command's settings, and waiting until they serve.

``parivision demo`` (and the tests and benchmarks) start ``serve``, ``stream``, ``sink`` and
``retrain-loop`` as ``python -m parivision <command>`` children, with every setting of ours and
the services already running (:func:`start_process`); a child that exits, or a consumer group or
API that does not come up, is a :class:`DemoError` naming its log.  How the children end with
the command is :mod:`parivision.cli.children`'s.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient

from parivision.cli.children import child_env
from parivision.settings import Settings


class DemoError(RuntimeError):
    """A started process exited, or did not come up in time: which, and where its log is."""


def _child_env(settings: Settings, endpoints) -> dict[str, str]:
    """The environment for a child process: every setting of ours, services pinned to the
    endpoints already running (so the child never starts its own)."""
    env = child_env(dict(os.environ))
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"PARIVISION_{name.upper()}"] = str(value)
    env.update(
        {
            "PARIVISION_HOME": str(settings.resolved_home()),
            "PARIVISION_KAFKA_BOOTSTRAP": endpoints.kafka,
            "PARIVISION_MONGODB_URI": endpoints.mongodb,
            "PARIVISION_MLFLOW_TRACKING_URI": endpoints.mlflow,
        }
    )
    return env


def start_process(settings: Settings, endpoints, command: str, log_name: str) -> subprocess.Popen:
    logs = settings.deployment_dir("logs")
    logs.mkdir(parents=True, exist_ok=True)
    log = open(logs / log_name, "ab")  # noqa: SIM115 - lives as long as the child
    return subprocess.Popen(
        [sys.executable, "-m", "parivision", command],
        env=_child_env(settings, endpoints),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_process(process: subprocess.Popen, timeout: float = 20.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_for_group(
    settings: Settings, group: str, processes: dict[str, subprocess.Popen], timeout: float = 120.0
) -> None:
    """Wait until a consumer group is stable with members, i.e. its worker really consumes."""
    admin = AdminClient({"bootstrap.servers": settings.kafka()})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        check_alive(settings, processes)
        try:
            description = admin.describe_consumer_groups([group])[group].result(timeout=10)
            if description.members and str(description.state).endswith("STABLE"):
                return
        except Exception:  # group not known yet
            pass
        time.sleep(0.5)
    raise DemoError(f"consumer group {group!r} did not become ready in {timeout:.0f}s")


def check_port_free(settings: Settings) -> None:
    import socket

    with socket.socket() as probe:
        # As uvicorn binds it: connections of a previous run in TIME_WAIT do not hold the port
        # (without this a demo started within a minute of the last one refused to start).
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((settings.api_host, settings.api_port))
        except OSError as error:
            raise DemoError(
                f"the live API's port {settings.api_host}:{settings.api_port} is taken ({error}): "
                "stop what holds it, or set PARIVISION_API_PORT"
            ) from None


def wait_for_api(
    settings: Settings, base: str, processes: dict[str, subprocess.Popen], timeout: float = 120.0
) -> None:
    """Wait until the API answers and follows ``shots.scored``, so the page sees every shot."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        check_alive(settings, processes)
        try:
            if httpx.get(f"{base}health", timeout=5).json()["live"]["following"]:
                return
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        time.sleep(0.5)
    raise DemoError(f"the live API at {base} did not become ready in {timeout:.0f}s")


def check_alive(settings: Settings, processes: dict[str, subprocess.Popen]) -> None:
    for name, process in processes.items():
        if process.poll() is not None:
            log = settings.deployment_dir("logs") / f"demo-{name}.log"
            raise DemoError(
                f"the {name} process exited with code {process.returncode}; "
                f"last lines of {log}:\n{_tail(log)}"
            )
