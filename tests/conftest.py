"""Shared fixtures: the real NBA data lives beside the project, never inside it."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


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
