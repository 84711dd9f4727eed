"""VirtualBetsApiSource against a real uvicorn server running create_api (real HTTP, on a port
of its own), and what an unreachable one gives."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import httpx
import pytest

from parivision.sources import open_source
from parivision.sources.csv_source import CsvSource
from parivision.sources.http_source import VirtualBetsApiSource
from tests.conftest import closed_port, shared_file

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def virtualbets_csv() -> Path:
    return shared_file("virtualbets_sample_1000.csv")


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


def ids(items) -> list[str]:
    return [item.shot["shot_id"] for item in items]


@pytest.fixture(scope="module")
def expected(virtualbets_csv) -> list[str]:
    return ids(CsvSource(virtualbets_csv))


def served(base: str) -> int:
    return httpx.get(f"{base}/health").json()["served"]


def test_api_serves_string_typed_records_and_ends_with_an_empty_list(api_server) -> None:
    httpx.get(f"{api_server}/getdata/reset").raise_for_status()
    page = httpx.get(f"{api_server}/getdata/3").json()
    assert len(page) == 3 and len(page[0]) == 22
    assert all(isinstance(value, str) for value in page[0].values())
    assert page[0]["Game ID"] == "21100057" and page[0]["Shot Made Flag"] == "0"
    assert httpx.get(f"{api_server}/getdata/0").status_code == 422
    while httpx.get(f"{api_server}/getdata/400").json():
        pass
    assert httpx.get(f"{api_server}/getdata/5").json() == []


def test_reads_every_record_across_pages_in_order(api_server, expected) -> None:
    items = list(VirtualBetsApiSource(api_server, page_size=300))
    assert len(items) == 1000 and ids(items) == expected


def test_limit_asks_for_no_more_than_it_uses(api_server, expected) -> None:
    items = list(VirtualBetsApiSource(api_server, page_size=7, limit=20))
    assert ids(items) == expected[:20]
    assert served(api_server) == 20  # 7 + 7 + 6: the server's cursor sits right after them


def test_reset_restarts_and_no_reset_continues(api_server, expected) -> None:
    first = list(VirtualBetsApiSource(api_server, page_size=4, limit=10))
    again = list(VirtualBetsApiSource(api_server, page_size=4, limit=10))
    onward = list(VirtualBetsApiSource(api_server, page_size=4, limit=10, reset=False))
    assert ids(first) == ids(again) == expected[:10]
    assert ids(onward) == expected[10:20]


def test_iterating_stops_early_without_reading_everything(api_server, expected) -> None:
    items = list(islice(VirtualBetsApiSource(api_server, page_size=50), 60))
    assert ids(items) == expected[:60] and served(api_server) == 100


def test_unreachable_server_is_a_connection_error_naming_the_url() -> None:
    port = closed_port()
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(ConnectionError, match=f"127.0.0.1:{port}/getdata/reset"):
        list(VirtualBetsApiSource(url, timeout=2))
    with pytest.raises(ConnectionError, match=f"127.0.0.1:{port}"):
        VirtualBetsApiSource(url, timeout=2).check()


def test_bad_page_size_is_refused() -> None:
    with pytest.raises(ValueError, match="page_size"):
        VirtualBetsApiSource("http://127.0.0.1:9", page_size=0)


def test_urls_are_the_api_and_must_answer(api_server) -> None:
    source = open_source(api_server, limit=5)
    assert isinstance(source, VirtualBetsApiSource) and len(list(source)) == 5
    dead = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(ConnectionError, match=dead):
        open_source(dead)
