"""The local MongoDB server: ``secantusd-py`` (a wire-protocol server from PyPI) on loopback.

It runs as a detached child process with its files in ``{home}/mongodb``, its log in
``{home}/logs/mongodb.log`` and its pid in ``{home}/run/mongodb.pid``.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from infra.process import (
    LocalProcess,
    ServiceError,
    pid_alive,
    port_free,
    tcp_reachable,
    who_listens,
)
from parivision.settings import Settings

if TYPE_CHECKING:
    from rich.console import Console

SERVICE = "MongoDB"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0

# Passing our own (empty) config stops secantusd from picking up ./secantusd.toml or
# ~/.secantus/secantusd.toml, which could turn on auth or change where it listens.
CONFIG = """\
# Written by parivision (infra/mongodb.py). Host, port and storage are given on the command line.
"""


def mongodb_dir(settings: Settings) -> Path:
    return settings.resolved_home() / "mongodb"


def local_process(settings: Settings) -> LocalProcess:
    home = settings.resolved_home()
    return LocalProcess(
        name="mongodb",
        pid_file=home / "run" / "mongodb.pid",
        log_file=home / "logs" / "mongodb.log",
        marker=str(mongodb_dir(settings) / "data"),
    )


def _server_executable(address: str) -> str:
    # The venv's console script sits next to its interpreter, even when the venv is not activated.
    beside = Path(sys.executable).with_name("secantusd-py")
    if beside.is_file():
        return str(beside)
    found = shutil.which("secantusd-py")
    if found is None:
        raise ServiceError(
            SERVICE,
            address,
            "`secantusd-py` (the embedded MongoDB server, an extra) is not installed",
            "pip install 'parivision[embedded-mongo]' (or `make setup`), or set "
            "PARIVISION_MONGODB_URI to a MongoDB server you already run",
        )
    return found


def preflight(settings: Settings) -> None:
    """Raise if the server's port is taken by a process that is not our server."""
    port = settings.mongodb_port
    if not port_free(port):
        owner = who_listens(port)
        raise ServiceError(
            SERVICE,
            local_address(settings),
            f"the port is already in use by {owner or 'another process'}, not by a server "
            f"PariVision started under {settings.resolved_home()}",
            "stop that process, or choose a free port with PARIVISION_MONGODB_PORT; if it is a "
            "MongoDB server you want to use, set PARIVISION_MONGODB_URI to its address instead",
        )


def local_address(settings: Settings) -> str:
    return f"127.0.0.1:{settings.mongodb_port}"


def probe_local(settings: Settings, timeout: float = 5.0) -> str | None:
    return probe(settings.local_mongodb_uri(), timeout)


def start(settings: Settings, console: Console | None = None) -> int:
    """Start the local server, wait until it answers ``ping``, and return its pid."""
    address = local_address(settings)
    preflight(settings)
    executable = _server_executable(address)
    directory = mongodb_dir(settings)
    (directory / "data").mkdir(parents=True, exist_ok=True)
    (directory / "secantusd.toml").write_text(CONFIG)
    proc = local_process(settings)
    since = proc.log_offset()
    pid = proc.spawn(
        [
            executable,
            "--config",
            str(directory / "secantusd.toml"),
            "--host",
            "127.0.0.1",
            "--port",
            str(settings.mongodb_port),
            "--storage-path",
            str(directory / "data"),
            "--log-level",
            "WARNING",
        ],
        cwd=directory,
    )
    problem = wait_ready(settings.local_mongodb_uri(), READY_TIMEOUT_S, lambda: pid_alive(pid))
    if problem is not None:
        tail = proc.log_tail(since)
        proc.stop(timeout=5)
        raise ServiceError(
            SERVICE,
            address,
            f"the local server (pid {pid}) did not become ready: {problem}.\n"
            f"  last lines of {proc.log_file}:\n{tail}",
            "read the log above; `parivision down` and `parivision up` retries",
        )
    return pid


def stop(settings: Settings) -> bool:
    """Stop the local server if it runs; True if it did."""
    return local_process(settings).stop(timeout=STOP_TIMEOUT_S)


def hosts_of(uri: str) -> list[tuple[str, int]]:
    """The seed hosts of a ``mongodb://`` URI (empty for ``mongodb+srv://``, resolved by DNS)."""
    from pymongo.uri_parser import parse_uri

    if uri.startswith("mongodb+srv://"):
        return []
    return [(host, int(port)) for host, port in parse_uri(uri)["nodelist"]]


def probe(uri: str, timeout: float = 5.0) -> str | None:
    """None if the server at ``uri`` answers ``ping``, else what went wrong."""
    from pymongo import MongoClient
    from pymongo.errors import ConfigurationError, PyMongoError

    try:
        hosts = hosts_of(uri)
    except (ConfigurationError, ValueError) as exc:
        return f"the URI is not valid ({exc})"
    # A quick TCP look first, so a closed port fails in milliseconds, not a selection timeout.
    if hosts and not any(tcp_reachable(h, p, timeout=min(2.0, timeout)) for h, p in hosts):
        return "nothing accepts connections there"
    ms = int(timeout * 1000)
    try:
        with MongoClient(uri, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms) as client:
            client.admin.command("ping")
    except PyMongoError as exc:
        return f"ping failed ({str(exc)[:300]})"
    return None


def wait_ready(uri: str, timeout: float, alive: Callable[[], bool] = lambda: True) -> str | None:
    """Poll :func:`probe` until it passes (None) or ``timeout`` runs out (the last problem)."""
    deadline = time.monotonic() + timeout
    problem = "not checked"
    while time.monotonic() < deadline:
        if not alive():
            return "the server process exited"
        problem = probe(uri, timeout=min(3.0, max(0.5, deadline - time.monotonic())))
        if problem is None:
            return None
        time.sleep(0.1)
    return f"{problem} after {timeout:.0f} s"
