"""Fixtures for the core tests: one pass over the shared NBA shots file, read once a session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import shared_file


@pytest.fixture(scope="session")
def nba_shots_csv() -> Path:
    return shared_file("nba_shots.csv")


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
