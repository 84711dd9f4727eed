"""Shared fixtures: the real NBA data lives beside the project, never inside it."""

from __future__ import annotations

import os
import tempfile
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
