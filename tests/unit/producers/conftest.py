"""Fixtures for the producer tests: the shared NBA data files and a real VirtualBets server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import shared_file


def shared(name: str) -> Path:
    """Path of a shared data file, or skip the test saying where it was looked for."""
    return shared_file(name)


@pytest.fixture(scope="session")
def nba_shots_csv() -> Path:
    return shared("nba_shots.csv")


@pytest.fixture(scope="session")
def bulk_csv_gz() -> Path:
    return shared("nba_shots_2003_2018_bulk.csv.gz")


@pytest.fixture(scope="session")
def virtualbets_csv() -> Path:
    return shared("virtualbets_sample_1000.csv")


@pytest.fixture
def write_csv(tmp_path: Path):
    """Factory: write ``lines`` (header included) to a temp CSV and return its path."""

    def write(lines: list[str], name: str = "shots.csv") -> Path:
        path = tmp_path / name
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="module")
def api_server(virtualbets_csv: Path) -> Iterator[str]:
    """A real uvicorn server for the VirtualBets API on a free local port, in a thread."""
    import uvicorn

    from producers.virtualbets_api import create_api

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # binding first means no other process can take the port
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_api(virtualbets_csv), log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the VirtualBets API server did not start within 10 s")
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def action_group(action_type: str) -> str:
    """Coarse action family, to compare make rates without 60-odd tiny categories."""
    lowered = action_type.lower()
    for key, group in (
        ("dunk", "dunk"), ("layup", "layup"), ("finger roll", "layup"), ("hook", "hook"),
        ("float", "floater"), ("fadeaway", "fadeaway"), ("turnaround", "fadeaway"),
        ("step back", "step back"), ("pull", "pull-up"), ("tip", "tip"),
    ):  # fmt: skip
        if key in lowered:
            return group
    return "jump shot"


class RealSummary:
    """What the tests need from one pass over nba_shots.csv (232k rows; read once)."""

    def __init__(self, path: Path) -> None:
        from parivision.court import zone_for
        from parivision.sources.base import SourceShot
        from parivision.sources.csv_source import CsvSource

        self.rows = self.bad = self.located = 0
        self.zone_mismatches: dict[str, int] = {}
        self.made_by_zone: dict[str, list[int]] = {}
        self.made_by_group: dict[str, list[int]] = {}
        made_total = 0
        for item in CsvSource(path):
            if not isinstance(item, SourceShot):
                self.bad += 1
                continue
            shot, made = item.shot, item.made
            self.rows += 1
            made_total += made
            for table, key in (
                (self.made_by_zone, shot["shot_zone_basic"]),
                (self.made_by_group, action_group(shot["action_type"])),
            ):
                pair = table.setdefault(key, [0, 0])
                pair[0] += made
                pair[1] += 1
            if shot["x"] == 0 and shot["y"] == 0:
                continue  # 4,401 source rows carry no real location (mostly old Kobe rows)
            self.located += 1
            for field, value in zone_for(shot["x"], shot["y"])._asdict().items():
                if shot[field] != value:
                    self.zone_mismatches[field] = self.zone_mismatches.get(field, 0) + 1
        self.make_rate = made_total / self.rows

    def rate(self, table: dict[str, list[int]], key: str) -> float:
        made, count = table[key]
        return made / count


@pytest.fixture(scope="session")
def real_summary(nba_shots_csv: Path) -> RealSummary:
    return RealSummary(nba_shots_csv)
