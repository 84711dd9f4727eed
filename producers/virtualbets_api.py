"""A VirtualBets-compatible shot API served from a CSV file, for replays, demos and tests.

The original project served its CSV through ``/getdata/reset`` and ``/getdata/{n}``, every value
rendered as a string.  This keeps that contract, so :class:`producers.http_source.
VirtualBetsApiSource` (or the original client) can read from it.
"""

from __future__ import annotations

import csv
import gzip
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI
from fastapi import Path as PathParam

__all__ = ["create_api", "serve_api"]

# One page is held in memory at a time; this bounds it.
MAX_PAGE = 10_000


class _Cursor:
    """The server's read position in the CSV; one for all clients, as in the original."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()  # FastAPI runs plain ``def`` routes in a thread pool
        self._rows: Iterator[dict[str, str]] | None = None
        self.served = 0

    def reset(self) -> None:
        with self._lock:
            self._rows = None
            self.served = 0

    def take(self, n: int) -> list[dict[str, str]]:
        with self._lock:
            if self._rows is None:
                self._rows = _read_records(self.path)
            page = []
            for record in self._rows:
                page.append(record)
                if len(page) == n:
                    break
            self.served += len(page)
            return page


def create_api(path_to_csv: str | os.PathLike[str]) -> FastAPI:
    """Build the app serving ``path_to_csv`` (``.csv`` or ``.csv.gz``) page by page.

    Routes:
        ``GET /getdata/reset``: rewind to the first record; returns ``{"reset": true}``.
        ``GET /getdata/{n}``: the next ``n`` (1 to 10,000) records as a JSON list of objects
        keyed by the CSV header, all values strings; ``[]`` once the file is exhausted.
        ``GET /health``: ``{"file": ..., "served": ...}``.

    Args:
        path_to_csv: The CSV to serve. It is opened on the first page request and streamed,
            so the 3M-row bulk file is served without loading it.

    Returns:
        The FastAPI application; run it with uvicorn (see :func:`serve_api`).

    Raises:
        FileNotFoundError: If the file does not exist.
    """
    path = Path(path_to_csv)
    if not path.is_file():
        raise FileNotFoundError(f"CSV file not found: {path}")
    cursor = _Cursor(path)
    app = FastAPI(title="VirtualBets shot API", description=f"Shots from {path.name}")

    # Declared before /getdata/{n}: routes match in order and "reset" is not a page size.
    @app.get("/getdata/reset")
    def reset() -> dict[str, bool]:
        cursor.reset()
        return {"reset": True}

    @app.get("/getdata/{n}")
    def getdata(n: Annotated[int, PathParam(ge=1, le=MAX_PAGE)]) -> list[dict[str, str]]:
        return cursor.take(n)

    @app.get("/health")
    def health() -> dict[str, object]:
        return {"file": path.name, "served": cursor.served}

    return app


def serve_api(
    path_to_csv: str | os.PathLike[str], host: str = "127.0.0.1", port: int = 8000
) -> None:
    """Serve ``path_to_csv`` until interrupted (blocking); the CLI's entry point to the API."""
    import uvicorn  # only needed when actually serving

    uvicorn.run(create_api(path_to_csv), host=host, port=port, log_level="info")


def _read_records(path: Path) -> Iterator[dict[str, str]]:
    """Rows as string-valued dicts keyed by the header, the way the original served them."""
    if path.suffix.lower() == ".gz":
        handle = gzip.open(path, "rt", encoding="utf-8-sig", newline="")  # noqa: SIM115
    else:
        handle = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed below
    with handle:
        for record in csv.DictReader(handle):
            # A short row gets None from DictReader and a long one a list under None; render
            # both as text so the client sees, and reports, the row as it is.
            yield {
                str(key): (
                    "" if value is None else value if isinstance(value, str) else ",".join(value)
                )
                for key, value in record.items()
            }
