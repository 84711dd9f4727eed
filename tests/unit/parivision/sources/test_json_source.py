"""VirtualBetsJsonSource on the original project's string-typed records."""

from __future__ import annotations

import csv
import json
from itertools import islice
from pathlib import Path

import pytest

from parivision.sources.base import BadRow, SourceShot
from parivision.sources.csv_source import CsvSource
from parivision.sources.json_source import VirtualBetsJsonSource


@pytest.fixture
def records(virtualbets_csv: Path) -> list[dict[str, str]]:
    """The first 20 rows of the VirtualBets sample as the original stored them: all strings."""
    with open(virtualbets_csv, encoding="utf-8", newline="") as handle:
        return list(islice(csv.DictReader(handle), 20))


def test_array_file_gives_the_same_shots_as_the_csv(records, virtualbets_csv, tmp_path) -> None:
    path = tmp_path / "sample.json"
    path.write_text(json.dumps(records, indent=2))
    assert records[0]["Shot Made Flag"] in {"0", "1"}  # string-typed, as in the original

    items = list(VirtualBetsJsonSource(path))

    expected = list(islice(CsvSource(virtualbets_csv), 20))
    assert items == expected
    assert items[0].shot["shot_id"] == "21100057-307" and items[0].shot["x"] == 13


def test_json_lines_with_bad_records_named_by_line(records, tmp_path) -> None:
    broken = dict(records[1], **{"X Location": "far"})
    lines = [json.dumps(records[0]), "", "{not json", json.dumps(broken), "[1, 2]",
             json.dumps(records[2])]  # fmt: skip
    path = tmp_path / "sample.jsonl"
    path.write_text("\n".join(lines) + "\n")

    items = list(VirtualBetsJsonSource(path))

    bad = [item for item in items if isinstance(item, BadRow)]
    assert [b.where for b in bad] == ["sample.jsonl line 3", "sample.jsonl line 4",
                                      "sample.jsonl line 5"]  # fmt: skip
    assert "not valid JSON" in bad[0].reason and bad[0].raw == "{not json"
    assert "X Location: 'far' is not an integer" in bad[1].reason
    assert "expected a JSON object" in bad[2].reason
    good = [item.shot["shot_id"] for item in items if isinstance(item, SourceShot)]
    assert good == ["21100057-307", "20200012-219"]


def test_array_with_a_bad_record_keeps_going(records, tmp_path) -> None:
    path = tmp_path / "sample.json"
    path.write_text(json.dumps([records[0], {"Game ID": "1"}, records[1]]))
    items = list(VirtualBetsJsonSource(path))
    assert [type(item).__name__ for item in items] == ["SourceShot", "BadRow", "SourceShot"]
    assert items[1].where == "sample.json record 2" and "missing column" in items[1].reason
    assert json.loads(items[1].raw) == {"Game ID": "1"}


def test_a_broken_array_file_is_refused_naming_it(tmp_path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('[{"Game ID": "1"},')
    with pytest.raises(ValueError, match=r"broken\.json: not valid JSON"):
        list(VirtualBetsJsonSource(path))
