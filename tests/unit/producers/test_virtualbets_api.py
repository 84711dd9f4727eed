"""The original VirtualBets API router: paging, reset, a cursor that survives restarts, no
row handed out twice under concurrent calls, from threads or from two servers."""

from __future__ import annotations

import csv
import gzip
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from producers.virtualbets_api import create_api, original_api_router


def file_rows(path: Path) -> list[dict[str, str]]:
    """The records as an independent reader sees them, to compare pages against."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    return tmp_path / "home" / "virtualbets-cursor.json"


@pytest.fixture
def client_factory(state_file: Path):
    """Factory: a client of a fresh app (a new server) on ``csv_path`` and the shared state."""

    def build(csv_path: Path, state: Path = state_file) -> TestClient:
        app = FastAPI()
        app.include_router(original_api_router(csv_path, state))
        return TestClient(app)

    return build


@pytest.fixture
def sample_lines(virtualbets_csv: Path) -> list[str]:
    return virtualbets_csv.read_text(encoding="utf-8-sig").splitlines()


@pytest.fixture
def small_csv(tmp_path: Path, sample_lines: list[str]):
    """Factory: a CSV (or .csv.gz) of the sample's header and data rows ``start`` to ``stop``."""

    def write(start: int, stop: int, name: str = "shots.csv") -> Path:
        path = tmp_path / name
        text = "\n".join([sample_lines[0], *sample_lines[1 + start : 1 + stop]]) + "\n"
        if name.endswith(".gz"):
            path.write_bytes(gzip.compress(text.encode("utf-8")))
        else:
            path.write_text(text, encoding="utf-8")
        return path

    return write


def page(client: TestClient, url: str) -> list[dict[str, str]]:
    response = client.get(url, follow_redirects=False)
    assert response.status_code == 200, response.text
    return response.json()


def test_pages_come_in_file_order_as_strings_and_end_with_an_empty_list(
    client_factory, virtualbets_csv
) -> None:
    client = client_factory(virtualbets_csv)
    expected = file_rows(virtualbets_csv)
    served = []
    while chunk := page(client, "/getdata/300"):
        served.extend(chunk)
    assert len(served) == 1000 and served == expected
    assert len(served[0]) == 22 and all(isinstance(v, str) for v in served[0].values())
    assert served[0]["Game ID"] == "21100057" and served[0]["Player Name"] == "JaVale McGee"
    assert page(client, "/getdata/5") == []


def test_trailing_slash_is_a_page_too_not_a_redirect(client_factory, virtualbets_csv) -> None:
    client = client_factory(virtualbets_csv)
    expected = file_rows(virtualbets_csv)
    assert page(client, "/getdata/3/") == expected[:3]
    assert page(client, "/getdata/2") == expected[3:5]
    assert page(client, "/getdata/reset/") == {"reset": True}
    assert page(client, "/getdata/1/") == expected[:1]


@pytest.mark.parametrize("reset_path", ["/reset", "/getdata/reset"])
def test_reset_rewinds_to_the_first_row(client_factory, virtualbets_csv, reset_path) -> None:
    client = client_factory(virtualbets_csv)
    expected = file_rows(virtualbets_csv)
    assert page(client, "/getdata/7") == expected[:7]
    assert page(client, reset_path) == {"reset": True}
    assert page(client, "/getdata/4") == expected[:4]
    assert page(client, "/getdata/4") == expected[4:8]


@pytest.mark.parametrize("name", ["shots.csv", "shots.csv.gz"])
def test_a_new_server_on_the_same_state_file_continues_at_the_next_row(
    client_factory, small_csv, state_file, name
) -> None:
    path = small_csv(0, 40, name)
    expected = file_rows(path)
    assert page(client_factory(path), "/getdata/15") == expected[:15]
    state = json.loads(state_file.read_text())
    assert state["served"] == 15 and state["file"]["path"] == str(path.resolve())
    assert page(client_factory(path), "/getdata/10") == expected[15:25]  # "restarted"
    assert page(client_factory(path), "/getdata/100") == expected[25:]


def test_restart_lands_on_row_boundaries_with_quoted_commas_and_newlines(
    client_factory, tmp_path
) -> None:
    path = tmp_path / "quoted.csv"
    path.write_bytes(
        "\ufeffGame ID,Player Name,Action Type\r\n"
        '1,"Nenê, Hilário","Jump\r\nShot"\r\n'
        '2,Luka Dončić,"say ""hi"""\r\n'
        "\r\n"
        "3,short\r\n"
        "4,long,row,extra\r\n".encode()
    )
    pages = [page(client_factory(path), "/getdata/1") for _ in range(5)]
    assert pages == [
        [{"Game ID": "1", "Player Name": "Nenê, Hilário", "Action Type": "Jump\r\nShot"}],
        [{"Game ID": "2", "Player Name": "Luka Dončić", "Action Type": 'say "hi"'}],
        [{"Game ID": "3", "Player Name": "short", "Action Type": ""}],
        [{"Game ID": "4", "Player Name": "long", "Action Type": "row", "None": "extra"}],
        [],
    ]


def test_eight_threads_calling_at_once_get_each_row_exactly_once(
    client_factory, virtualbets_csv
) -> None:
    client = client_factory(virtualbets_csv)
    start = threading.Barrier(8)

    def call_25_times(_: int) -> list[dict[str, str]]:
        start.wait()
        return [row for _ in range(25) for row in page(client, "/getdata/3")]

    with ThreadPoolExecutor(8) as pool:
        served = [row for rows in pool.map(call_25_times, range(8)) for row in rows]
    assert_exactly_the_first_rows(served, file_rows(virtualbets_csv), 600)


def test_two_servers_sharing_a_state_file_never_hand_out_the_same_row(
    client_factory, virtualbets_csv
) -> None:
    # Two routers have two thread locks: only the lock on the state file keeps them apart.
    clients = [client_factory(virtualbets_csv), client_factory(virtualbets_csv)]
    start = threading.Barrier(8)

    def call_25_times(worker: int) -> list[dict[str, str]]:
        start.wait()
        return [row for _ in range(25) for row in page(clients[worker % 2], "/getdata/3")]

    with ThreadPoolExecutor(8) as pool:
        served = [row for rows in pool.map(call_25_times, range(8)) for row in rows]
    assert_exactly_the_first_rows(served, file_rows(virtualbets_csv), 600)
    assert page(clients[0], "/getdata/1") == file_rows(virtualbets_csv)[600:601]


def assert_exactly_the_first_rows(served, expected, count: int) -> None:
    keys = [(row["Game ID"], row["Game Event ID"]) for row in served]
    assert len(keys) == count and len(set(keys)) == count, "a row was handed out twice"
    assert sorted(keys) == sorted((r["Game ID"], r["Game Event ID"]) for r in expected[:count])


def test_a_changed_file_restarts_from_row_0_and_says_so(client_factory, small_csv, caplog) -> None:
    first = small_csv(0, 10)
    assert page(client_factory(first), "/getdata/4") == file_rows(first)[:4]
    changed = small_csv(100, 120)  # same path, other rows
    with caplog.at_level(logging.INFO, logger="producers.virtualbets_api"):
        assert page(client_factory(changed), "/getdata/3") == file_rows(changed)[:3]
    assert "restarts at row 0" in caplog.text
    assert page(client_factory(changed), "/getdata/3") == file_rows(changed)[3:6]


def test_another_file_on_the_same_state_file_starts_at_row_0(client_factory, small_csv) -> None:
    one, two = small_csv(0, 10, "one.csv"), small_csv(50, 60, "two.csv")
    assert page(client_factory(one), "/getdata/5") == file_rows(one)[:5]
    assert page(client_factory(two), "/getdata/2") == file_rows(two)[:2]


def test_an_unreadable_state_file_restarts_from_row_0(
    client_factory, small_csv, state_file, caplog
) -> None:
    path = small_csv(0, 10)
    state_file.parent.mkdir(parents=True)
    state_file.write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="producers.virtualbets_api"):
        assert page(client_factory(path), "/getdata/2") == file_rows(path)[:2]
    assert str(state_file) in caplog.text
    assert json.loads(state_file.read_text())["served"] == 2


@pytest.mark.parametrize("n", ["0", "10001", "-1", "ten"])
def test_page_size_outside_1_to_10000_is_a_422_naming_n(client_factory, small_csv, n) -> None:
    client = client_factory(small_csv(0, 5))
    for url in (f"/getdata/{n}", f"/getdata/{n}/"):
        response = client.get(url)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["path", "n"]
    assert len(page(client, "/getdata/10000")) == 5  # the bounds themselves are fine


def test_an_exhausted_file_gives_an_empty_list_until_reset(client_factory, small_csv) -> None:
    path = small_csv(0, 5)
    client = client_factory(path)
    assert page(client, "/getdata/10") == file_rows(path)
    assert page(client, "/getdata/10") == [] and page(client_factory(path), "/getdata/1") == []
    page(client, "/reset")
    assert page(client, "/getdata/2") == file_rows(path)[:2]


def test_create_api_reports_served_rows_and_keeps_a_given_state_file(small_csv, state_file) -> None:
    path = small_csv(0, 10)
    client = TestClient(create_api(path, state_file))
    page(client, "/getdata/3/")
    assert page(client, "/health") == {"file": "shots.csv", "served": 3}
    again = TestClient(create_api(path, state_file))
    assert page(again, "/getdata/2") == file_rows(path)[3:5]
    # Without a state file each app has its own cursor, lasting as long as the app.
    assert page(TestClient(create_api(path)), "/getdata/1") == file_rows(path)[:1]


def test_a_missing_csv_is_refused_at_construction(tmp_path, state_file) -> None:
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        original_api_router(tmp_path / "nope.csv", state_file)
