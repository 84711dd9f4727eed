"""Shared fixtures: the real NBA data lives beside the project, never inside it."""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
INTEGRATION = Path(__file__).resolve().parent / "integration"

# Hypothesis writes nothing into the checkout (it would make .hypothesis/ there): no example
# database (a failing example is printed with its failure), its other caches in the temp folder.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / f"parivision-hypothesis-{os.getuid()}")
settings.register_profile("parivision", database=None)
settings.load_profile("parivision")


def pytest_collection_modifyitems(items) -> None:
    """Every test under tests/integration is an integration test, marked or not: `make unit`
    (``-m "not integration"``) must never start the services."""
    for item in items:
        if INTEGRATION in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.integration)


def listening_ports() -> set[int]:
    """The TCP ports something on this machine listens on (Linux's /proc/net/tcp, tcp6)."""
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def closed_port() -> int:
    """A loopback port nothing listens on (found without binding it): a service that is not
    there, for the tests of what an unreachable one gives."""
    import random

    taken = listening_ports()
    while (port := random.randint(20_000, 29_999)) in taken:
        pass
    return port


class PortGuard:
    """While a unit test is set up and run: opening a port (binding a TCP or UDP socket) or
    talking to a service (connecting to a port something listens on) is refused (an audit hook:
    the call raises) and fails the test, with the address, even where the code under test would
    swallow the error.  Unit tests need nothing running; a connection refused by a port where
    nothing listens (an unreachable service named in an error) is allowed.  Threads that were
    running before the test (an integration test's clients, in a mixed session) are not its."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.on = False
        self.others: set[int] = set()

    def start(self) -> None:
        main = threading.main_thread().ident
        self.others = {t.ident for t in threading.enumerate() if t.ident != main}
        self.seen.clear()
        self.on = True

    def stop(self) -> list[str]:
        self.on = False
        seen, self.seen = self.seen, []
        return seen

    def __call__(self, event: str, args: tuple) -> None:
        if not self.on or event not in ("socket.bind", "socket.connect"):
            return
        sock, address = args[0], args[1]
        if getattr(sock, "family", None) not in (socket.AF_INET, socket.AF_INET6):
            return
        if threading.get_ident() in self.others:
            return
        if event == "socket.connect" and address[1] not in listening_ports():
            return
        what = f"{'bound' if event == 'socket.bind' else 'connected to'} {address[0]}:{address[1]}"
        self.seen.append(what)
        raise PermissionError(f"a unit test may open no port ({what}): make it an integration test")


PORT_GUARD = PortGuard()
sys.addaudithook(PORT_GUARD)


def _guarded(item):
    if item.get_closest_marker("integration"):
        yield
        return
    PORT_GUARD.start()
    try:
        yield
    finally:
        opened = PORT_GUARD.stop()
    if opened:
        pytest.fail(f"a unit test opened a port: {', '.join(opened)}", pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    yield from _guarded(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    yield from _guarded(item)


def shared_file(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} is not here (the shared NBA data sits beside the project)")
    return path


@pytest.fixture(scope="session")
def nba_csv() -> Path:
    return shared_file("nba_shots.csv")


@pytest.fixture(scope="session")
def shots_frame(nba_csv):
    from models.data import load_shots

    return load_shots(nba_csv)


@pytest.fixture(scope="session")
def games_csv(nba_csv, tmp_path_factory) -> Path:
    """40,000 real shots of the 2018-19 season in game order, in the file's own 22 columns.

    The shared file is sorted by player (its first 20,000 rows are all Kobe Bryant's), so a
    replay of it in file order is one player on one partition.  Live games interleave hundreds
    of players; this is what the stream tests replay.  Written under pytest's temporary folder.
    """
    import pandas as pd

    raw = pd.read_csv(nba_csv, low_memory=False)
    raw = raw[raw["Game Date"] >= 20181201].sort_values(
        ["Game Date", "Game ID", "Game Event ID"], kind="stable"
    )
    path = tmp_path_factory.mktemp("games") / "games_2018_19.csv"
    raw.iloc[:40_000].to_csv(path, index=False)
    return path
