"""Shots paged from a VirtualBets HTTP API (``/getdata/reset`` and ``/getdata/{n}``)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx

from parivision.sources.base import BadRow, Source, SourceShot
from parivision.sources.json_source import record_to_item

__all__ = ["VirtualBetsApiSource"]


class VirtualBetsApiSource(Source):
    """Client for the VirtualBets shot API, the way the original project fed its stream.

    ``GET {base}/getdata/reset`` rewinds the server's cursor; ``GET {base}/getdata/{n}`` returns
    a JSON list of the next ``n`` records (string-typed, keyed by the 22 CSV column names) and
    an empty list once the data is exhausted.  :mod:`producers.virtualbets_api` serves this API
    from a CSV file.

    Args:
        base_url: Where the API lives, e.g. ``"http://127.0.0.1:8000"``.
        page_size: Records asked for per request.
        limit: Stop after this many shots (bad records do not count); ``None`` reads to the
            end.
        reset: Rewind the server first, so a replay starts at the first record. Without it the
            replay continues where the previous client stopped (the cursor is the server's).
        timeout: Seconds to wait for each response.

    Raises:
        ValueError: At construction, for a page size or limit below 1 or 0.
        ConnectionError: When iterating, if the server cannot be reached; names the URL.
        RuntimeError: When iterating, if the server answers with an error status or with
            something other than a JSON list.
    """

    def __init__(
        self,
        base_url: str,
        page_size: int = 500,
        limit: int | None = None,
        reset: bool = True,
        timeout: float = 10.0,
    ) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {page_size}")
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be 0 or more, got {limit}")
        self.base_url = base_url.rstrip("/")
        self.page_size = page_size
        self.limit = limit
        self.reset = reset
        self.timeout = timeout
        self.name = f"api:{self.base_url}"

    def __iter__(self) -> Iterator[SourceShot | BadRow]:
        with httpx.Client(timeout=self.timeout) as client:
            if self.reset:
                self._get(client, f"{self.base_url}/getdata/reset")
            shots = records = 0
            while self.limit is None or shots < self.limit:
                size = self.page_size
                if self.limit is not None:
                    # Never ask for more than we will use: the server's cursor would move past
                    # records this replay does not send, and a later replay would miss them.
                    size = min(size, self.limit - shots)
                url = f"{self.base_url}/getdata/{size}"
                page = self._get(client, url)
                if not isinstance(page, list):
                    raise RuntimeError(f"{url} returned {type(page).__name__}, expected a list")
                if not page:
                    return
                for record in page:
                    records += 1
                    item = record_to_item(record, f"{self.base_url} record {records}")
                    shots += isinstance(item, SourceShot)
                    yield item
                    if self.limit is not None and shots >= self.limit:
                        return  # a server that sends more than asked for is not followed

    def check(self) -> None:
        """Make sure something answers at ``base_url``, without moving the server's cursor.

        Raises:
            ConnectionError: If the server cannot be reached; names the URL.
        """
        with httpx.Client(timeout=self.timeout) as client:
            try:
                client.get(self.base_url + "/")
            except httpx.TransportError as exc:
                raise _unreachable(self.base_url, exc) from exc

    def _get(self, client: httpx.Client, url: str) -> object:
        try:
            response = client.get(url)
        except httpx.TransportError as exc:
            raise _unreachable(url, exc) from exc
        if response.is_error:
            raise RuntimeError(f"{url} answered HTTP {response.status_code}: {response.text[:200]}")
        try:
            return response.json()
        except json.JSONDecodeError as exc:
            raise RuntimeError(f"{url} did not return JSON: {exc}") from exc


def _unreachable(url: str, exc: Exception) -> ConnectionError:
    return ConnectionError(
        f"cannot reach the VirtualBets API at {url} ({exc.__class__.__name__}: {exc}); "
        "is the server running and is the URL right?"
    )
