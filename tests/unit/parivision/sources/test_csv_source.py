"""CsvSource on the real files and on small hand-made ones."""

from __future__ import annotations

import gzip
from itertools import islice
from operator import itemgetter
from pathlib import Path

import pytest

from parivision.schemas import CSV_COLUMNS, Shot
from parivision.sources.base import BadRow, SourceShot
from parivision.sources.csv_source import CsvSource

HEADER = ",".join(CSV_COLUMNS)
GOOD = (
    "29600027,102,977,Kobe Bryant,1610612747,Los Angeles Lakers,1,0,42,Jump Shot,2PT Field Goal,"
    "Mid-Range,Left Side Center(LC),16-24 ft.,18,-140,116,0,19961103,LAL,MIN,Regular Season"
)


def shots(items: list) -> list[SourceShot]:
    return [item for item in items if isinstance(item, SourceShot)]


def test_real_rows_parse_in_file_order_with_known_values(nba_shots_csv: Path) -> None:
    items = list(islice(CsvSource(nba_shots_csv), 2000))

    assert all(isinstance(item, SourceShot) for item in items)
    first = items[0]
    assert first.shot["shot_id"] == "29600027-102"
    assert first.made == 0
    assert first.shot["player_name"] == "Kobe Bryant"
    assert (first.shot["x"], first.shot["y"], first.shot["game_date"]) == (-140, 116, 19961103)
    # The file is sorted by date, game and event: order must survive the parse.
    keys = [(i.shot["game_date"], i.shot["game_id"], i.shot["game_event_id"]) for i in items]
    assert keys == sorted(keys)
    for item in items[:200]:
        Shot(**item.shot)


def test_gzip_bulk_rows_get_hash_ids_stable_across_reads(bulk_csv_gz: Path) -> None:
    first = [item.shot["shot_id"] for item in islice(CsvSource(bulk_csv_gz), 50_000)]
    second = [item.shot["shot_id"] for item in islice(CsvSource(bulk_csv_gz), 50_000)]

    assert len(first) == 50_000
    assert first == second
    assert all("-h" in shot_id for shot_id in first)  # no Game Event ID in the bulk file


def test_gzip_bulk_ids_collide_only_where_the_rows_are_the_same_moment(bulk_csv_gz: Path) -> None:
    """Distinct moments never share an id; identical moments (two tip-ins by one player in
    the same second at X = Y = 0) unavoidably do, since the file has no event id."""
    moment = itemgetter(
        "game_id", "period", "minutes_remaining", "seconds_remaining", "player_id", "x", "y"
    )
    ids: dict[str, set[tuple]] = {}
    for item in islice(CsvSource(bulk_csv_gz), 50_000):
        ids.setdefault(item.shot["shot_id"], set()).add(moment(item.shot))
    assert all(len(moments) == 1 for moments in ids.values()), "hash collision"
    duplicated = 50_000 - len(ids)
    assert duplicated <= 50, f"{duplicated} repeated moments in 50,000 rows"


def test_bad_rows_are_reported_with_their_file_line(write_csv) -> None:
    short = GOOD.rsplit(",", 1)[0]
    letters = GOOD.replace(",-140,", ",left,")
    flag = GOOD.replace(",0,19961103,", ",2,19961103,")
    path = write_csv([HEADER, GOOD, GOOD.replace(",102,", ",103,"), short, letters, flag, GOOD])

    items = list(CsvSource(path))

    bad = [item for item in items if isinstance(item, BadRow)]
    assert [b.where for b in bad] == ["shots.csv line 4", "shots.csv line 5", "shots.csv line 6"]
    assert bad[0].reason == "expected 22 fields, found 21" and bad[0].raw == short
    assert "X Location: 'left' is not an integer" in bad[1].reason and bad[1].raw == letters
    assert "Shot Made Flag" in bad[2].reason and bad[2].raw == flag
    assert [s.shot["game_event_id"] for s in shots(items)] == [102, 103, 102]


def test_the_source_does_not_range_check_coordinates(write_csv) -> None:
    """Off-court X is the stream's call (through the Shot model), not a parse error."""
    path = write_csv([HEADER, GOOD.replace(",-140,", ",-9999,")])
    (item,) = list(CsvSource(path))
    assert isinstance(item, SourceShot) and item.shot["x"] == -9999


def test_quoted_fields_blank_lines_crlf_and_extra_columns(tmp_path: Path) -> None:
    quoted = GOOD.replace("Kobe Bryant", '"Bryant, Kobe"')
    text = f"{HEADER},Extra\r\n{quoted},x\r\n\r\n{GOOD},y\r\n"
    path = tmp_path / "odd.csv"
    path.write_bytes(text.encode("utf-8-sig"))

    items = list(CsvSource(path))

    assert [i.shot["player_name"] for i in shots(items)] == ["Bryant, Kobe", "Kobe Bryant"]
    assert len(items) == 2


def test_gzip_is_chosen_by_suffix(tmp_path: Path) -> None:
    path = tmp_path / "few.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(f"{HEADER}\n{GOOD}\n")
    (item,) = list(CsvSource(path))
    assert item.shot["shot_id"] == "29600027-102"


def test_missing_columns_raise_naming_them_and_the_file(write_csv) -> None:
    header = HEADER.replace("Shot Made Flag,", "").replace("X Location,", "")
    path = write_csv([header, GOOD])
    with pytest.raises(ValueError, match=r"shots\.csv.*'X Location', 'Shot Made Flag'"):
        list(CsvSource(path))


def test_empty_and_absent_files_are_clear_errors(write_csv, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty"):
        list(CsvSource(write_csv([""], name="empty.csv")))
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        CsvSource(tmp_path / "nope.csv")


def test_the_whole_real_file_parses_without_a_bad_row(real_summary) -> None:
    assert (real_summary.rows, real_summary.bad) == (232_410, 0)
    assert real_summary.make_rate == pytest.approx(0.459, abs=0.0005)  # as the README says
