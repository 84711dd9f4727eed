"""Fixtures for the source tests: the shared data files and a temp-CSV writer (the real
VirtualBets server is in tests/integration/test_http_source.py: it opens a port)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import shared_file


@pytest.fixture(scope="session")
def bulk_csv_gz() -> Path:
    return shared_file("nba_shots_2003_2018_bulk.csv.gz")


@pytest.fixture(scope="session")
def virtualbets_csv() -> Path:
    return shared_file("virtualbets_sample_1000.csv")


@pytest.fixture
def write_csv(tmp_path: Path):
    """Factory: write ``lines`` (header included) to a temp CSV and return its path."""

    def write(lines: list[str], name: str = "shots.csv") -> Path:
        path = tmp_path / name
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    return write
