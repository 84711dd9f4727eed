"""open_source: one --data value in, the right source out (or an error a user can act on)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parivision.schemas import CSV_COLUMNS
from parivision.sources import Limited, open_source
from parivision.sources.base import BadRow, SourceShot
from parivision.sources.csv_source import CsvSource
from parivision.sources.json_source import VirtualBetsJsonSource
from parivision.sources.synthetic import SyntheticSource

ROW = (
    "29600027,102,977,Kobe Bryant,1610612747,Los Angeles Lakers,1,0,42,Jump Shot,2PT Field Goal,"
    "Mid-Range,Left Side Center(LC),16-24 ft.,18,-140,116,0,19961103,LAL,MIN,Regular Season"
)


def test_nothing_means_synthetic_games() -> None:
    source = open_source(None, synthetic_games=2, seed=3, limit=10)
    assert isinstance(source, SyntheticSource) and (source.games, source.seed) == (2, 3)
    assert len(list(source)) == 10


@pytest.mark.parametrize("suffix", [".csv", ".CSV", ".csv.gz"])
def test_csv_files(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"shots{suffix}"
    path.touch()
    assert isinstance(open_source(str(path)), CsvSource)


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_json_files(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"shots{suffix}"
    path.write_text("[]")
    assert isinstance(open_source(str(path)), VirtualBetsJsonSource)


def test_missing_file_and_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        open_source(str(tmp_path / "missing.csv"))
    (tmp_path / "shots.parquet").touch()
    with pytest.raises(ValueError, match="shots.parquet"):
        open_source(str(tmp_path / "shots.parquet"))


def test_limit_counts_shots_and_lets_bad_rows_through(tmp_path: Path) -> None:
    lines = [",".join(CSV_COLUMNS), ROW, "broken", ROW.replace(",102,", ",103,"), ROW]
    path = tmp_path / "shots.csv"
    path.write_text("\n".join(lines) + "\n")

    items = list(open_source(str(path), limit=2))

    assert [type(item) for item in items] == [SourceShot, BadRow, SourceShot]
    assert list(Limited(CsvSource(path), 0)) == []
    assert json.dumps(items[2].shot)  # plain JSON types, ready for the wire


def test_synthetic_source_plays_enough_games_for_the_limit():
    from parivision.sources.base import SourceShot

    shots = [item for item in open_source(None, limit=5000) if isinstance(item, SourceShot)]
    assert len(shots) == 5000


def test_the_readme_s_real_data_replay_covers_the_league_in_game_order(nba_csv) -> None:
    """`--since 20181016 --limit 20000`: the file's first 20,000 rows are Kobe Bryant's; from
    the 2018-19 season's first day on they are every team's games, in date order."""
    shots = [i.shot for i in open_source(str(nba_csv), since=20181016, limit=20_000)]
    assert len(shots) == 20_000
    assert len({s["team_id"] for s in shots}) == 30 and len({s["player_id"] for s in shots}) > 300
    dates = [s["game_date"] for s in shots]
    assert dates == sorted(dates) and dates[0] == 20181016
    early = [i.shot for i in open_source(str(nba_csv), until=20000101, limit=500)]
    assert {s["player_name"] for s in early} == {"Kobe Bryant"}
    assert all(s["game_date"] <= 20000101 for s in early)
    with pytest.raises(ValueError, match="after"):
        open_source(str(nba_csv), since=20190101, until=20180101)
