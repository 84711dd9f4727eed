"""A VirtualBets-compatible shot API served from a CSV file, for replays, demos and tests.

The original project served its CSV through ``/reset`` and ``/getdata/{n}/``, every value
rendered as a string.  This keeps that contract, so :class:`parivision.sources.http_source.
VirtualBetsApiSource` (or the original client) can read from it, and adds what the original
lacked: the cursor survives a restart, and concurrent calls, from threads or from several
server processes sharing one state file, never get the same row twice.
"""

from __future__ import annotations

import csv
import fcntl
import gzip
import json
import logging
import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException
from fastapi import Path as PathParam

__all__ = ["CURSOR_FILE_NAME", "MAX_PAGE", "create_api", "original_api_router", "serve_api"]

log = logging.getLogger(__name__)

# One page is held in memory at a time; this bounds it.
MAX_PAGE = 10_000
# Where the CLI keeps the cursor, under $PARIVISION_HOME.
CURSOR_FILE_NAME = "virtualbets-cursor.json"
_STATE_VERSION = 1


def original_api_router(
    csv_path: str | os.PathLike[str], state_file: str | os.PathLike[str]
) -> APIRouter:
    """Routes of the original VirtualBets API over ``csv_path``, cursor kept in ``state_file``.

    Routes:
        ``GET /getdata/{n}`` and ``GET /getdata/{n}/``: the next ``n`` (1 to 10,000) records
        as a JSON list of objects keyed by the CSV header, all values strings; ``[]`` once the
        file is exhausted; 422 for any other ``n``.
        ``GET /reset`` and ``GET /getdata/reset``: rewind to the first record; return
        ``{"reset": true}``.

    Every call reads and writes the cursor under a lock on ``state_file`` (see
    :class:`_Cursor`), so a new server on the same state file continues where the last one
    stopped, and servers sharing it hand out each row once until a reset.

    Args:
        csv_path: The CSV to serve (``.csv`` or ``.csv.gz``). It is streamed, never loaded.
        state_file: JSON file holding the cursor; its folder is created on the first call.

    Returns:
        The router; include it in a FastAPI app.

    Raises:
        FileNotFoundError: If ``csv_path`` does not exist.
    """
    return _routes(_Cursor(csv_path, state_file))


def create_api(
    path_to_csv: str | os.PathLike[str], state_file: str | os.PathLike[str] | None = None
) -> FastAPI:
    """A standalone app with :func:`original_api_router` plus ``GET /health``.

    ``GET /health`` answers ``{"file": ..., "served": ...}`` without moving the cursor.

    Args:
        path_to_csv: The CSV to serve (``.csv`` or ``.csv.gz``).
        state_file: Where to keep the cursor. ``None`` keeps it in a temporary folder removed
            with the app, so the cursor then lasts only as long as the process.

    Returns:
        The FastAPI application; run it with uvicorn (see :func:`serve_api`).

    Raises:
        FileNotFoundError: If the CSV does not exist.
    """
    path = Path(path_to_csv)
    app = FastAPI(title="VirtualBets shot API", description=f"Shots from {path.name}")
    if state_file is None:
        folder = tempfile.mkdtemp(prefix="virtualbets-api-")
        weakref.finalize(app, shutil.rmtree, folder, ignore_errors=True)
        state_file = Path(folder) / CURSOR_FILE_NAME
    cursor = _Cursor(path, state_file)
    app.include_router(_routes(cursor))

    @app.get("/health")
    def health() -> dict[str, object]:
        return {"file": path.name, "served": cursor.served()}

    return app


def serve_api(
    path_to_csv: str | os.PathLike[str],
    host: str = "127.0.0.1",
    port: int = 8000,
    state_file: str | os.PathLike[str] | None = None,
) -> None:
    """Serve ``path_to_csv`` until interrupted (blocking); the CLI's entry point to the API."""
    import uvicorn  # only needed when actually serving

    uvicorn.run(create_api(path_to_csv, state_file), host=host, port=port, log_level="info")


# The CSV cannot be read (moved, unreadable): what every route may answer besides its own.
_UNREADABLE = {
    503: {
        "description": "The CSV cannot be read (the detail names it)",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"detail": {"type": "string"}},
                    "required": ["detail"],
                }
            }
        },
    }
}


def _routes(cursor: _Cursor) -> APIRouter:
    router = APIRouter(tags=["original VirtualBets API"], responses=_UNREADABLE)

    def reset() -> dict[str, bool]:
        cursor.reset()
        return {"reset": True}

    def getdata(
        n: Annotated[
            int, PathParam(ge=1, le=MAX_PAGE, description=f"Records to return, 1 to {MAX_PAGE}")
        ],
    ) -> list[dict[str, str]]:
        return cursor.take(n)

    # Reset first: routes match in order and "reset" is not a page size.  The slash variants
    # are routes of their own, not redirects, because the original client called
    # /getdata/{n}/ and not every client follows a redirect.
    for path in ("/reset", "/reset/", "/getdata/reset", "/getdata/reset/"):
        router.add_api_route(path, reset, methods=["GET"], include_in_schema=not path.endswith("/"))
    for path in ("/getdata/{n}", "/getdata/{n}/"):
        router.add_api_route(
            path, getdata, methods=["GET"], include_in_schema=not path.endswith("/")
        )
    return router


class _Cursor:
    """The read position in the CSV, shared by every caller of every server on ``state_file``.

    State file (JSON, replaced atomically after every call)::

        {"version": 1,
         "file": {"path": "/abs/shots.csv", "size": 123456, "mtime_ns": 1700000000000000000},
         "served": 600,
         "offset": 98765}

    ``served`` counts the rows handed out since the last reset; ``offset`` is the byte position
    just after the last of them (in the decompressed text for ``.csv.gz``), so a restart seeks
    there instead of re-reading.  A state written for another file, or for this file at another
    size or mtime, is ignored with a log line and serving restarts at row 0.
    """

    def __init__(self, csv_path: str | os.PathLike[str], state_file: str | os.PathLike[str]):
        self.path = Path(csv_path).expanduser().resolve()
        if not self.path.is_file():
            raise FileNotFoundError(f"CSV file not found: {self.path}")
        self.state_file = Path(state_file).expanduser().resolve()
        # The state file itself is replaced on every write, so a lock on it would guard a file
        # that is no longer there; the lock lives on a companion file that is never replaced.
        self._lock_file = self.state_file.with_name(self.state_file.name + ".lock")
        self._thread_lock = threading.Lock()  # FastAPI runs plain ``def`` routes in threads
        self._reader: _Reader | None = None  # kept open so the next page needs no seek

    def take(self, n: int) -> list[dict[str, str]]:
        with self._locked():
            identity = self._identity()
            served, offset = self._load(identity)
            reader = self._reader_at(identity, offset)
            try:
                page = reader.take(n)
            except csv.Error as exc:
                self._reader = None
                reader.close()
                raise HTTPException(
                    500,
                    f"{self.path}: cannot parse a record after byte {offset} ({exc}); "
                    "fix or remove that row",
                ) from exc
            self._save(identity, served + len(page), reader.offset)
            return page

    def reset(self) -> None:
        with self._locked():
            self._save(self._identity(), 0, 0)

    def served(self) -> int:
        with self._locked():
            return self._load(self._identity())[0]

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            self._lock_file.parent.mkdir(parents=True, exist_ok=True)
            # flock, not lockf: flock locks belong to the open file, so two routers in one
            # process exclude each other as two processes do.
            with open(self._lock_file, "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                yield  # closing the file releases the lock

    def _identity(self) -> dict[str, Any]:
        try:
            stat = self.path.stat()
        except OSError as exc:
            raise HTTPException(503, f"cannot read {self.path}: {exc}") from exc
        return {"path": str(self.path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}

    def _load(self, identity: dict[str, Any]) -> tuple[int, int]:
        """``(served, offset)`` from the state file, ``(0, 0)`` if it is absent or stale."""
        try:
            state = json.loads(self.state_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return 0, 0
        except (OSError, ValueError) as exc:
            log.warning(
                "unreadable cursor %s (%s); serving restarts at row 0", self.state_file, exc
            )
            return 0, 0
        try:
            served, offset = int(state["served"]), int(state["offset"])
            same_file = state["file"] == identity
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("malformed cursor %s (%r); serving restarts at row 0", self.state_file, exc)
            return 0, 0
        if not same_file:
            log.info(
                "cursor %s was for %s; %s is %s now, so serving restarts at row 0",
                self.state_file,
                state["file"],
                self.path,
                identity,
            )
            return 0, 0
        return served, offset

    def _save(self, identity: dict[str, Any], served: int, offset: int) -> None:
        state = {"version": _STATE_VERSION, "file": identity, "served": served, "offset": offset}
        handle, temp = tempfile.mkstemp(
            dir=self.state_file.parent, prefix=self.state_file.name, suffix=".tmp"
        )
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(state, out)
                out.flush()
                os.fsync(out.fileno())  # the rename must not land before the content
            os.replace(temp, self.state_file)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def _reader_at(self, identity: dict[str, Any], offset: int) -> _Reader:
        reader = self._reader
        if reader is not None and reader.identity == identity and reader.offset == offset:
            return reader  # the usual case with one server: carry on where the last page ended
        if reader is not None:
            reader.close()
            self._reader = None
        try:
            self._reader = _Reader(self.path, identity, offset)
        except OSError as exc:
            raise HTTPException(503, f"cannot read {self.path}: {exc}") from exc
        return self._reader


class _Reader:
    """An open CSV positioned at a byte ``offset``, yielding records the way the original did."""

    def __init__(self, path: Path, identity: dict[str, Any], offset: int) -> None:
        self.identity = identity
        self._handle = _open_binary(path)
        self._lines = _Lines(self._handle)
        self._records = csv.DictReader(self._lines)
        self._records.fieldnames  # noqa: B018 - reads the header, which is never skipped
        if offset > self._lines.offset:
            # A plain file jumps there; a .gz decompresses its way there but parses nothing.
            self._handle.seek(offset)
            self._lines.offset = offset

    @property
    def offset(self) -> int:
        return self._lines.offset

    def take(self, n: int) -> list[dict[str, str]]:
        page = []
        for record in self._records:
            # A short row gets None from DictReader and a long one a list under None; render
            # both as text so the client sees, and reports, the row as it is.
            page.append(
                {
                    str(key): (
                        ""
                        if value is None
                        else value
                        if isinstance(value, str)
                        else ",".join(value)
                    )
                    for key, value in record.items()
                }
            )
            if len(page) == n:
                break
        return page

    def close(self) -> None:
        self._handle.close()


def _open_binary(path: Path) -> IO[bytes]:
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rb")
    return open(path, "rb")


class _Lines:
    """Text lines of a binary file, counting the bytes consumed so a record's end is known.

    The csv reader pulls exactly the lines of one record and no more, so after each record
    ``offset`` is where the next one starts (text files refuse ``tell()`` while iterated).
    """

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self.offset = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = self._handle.readline()
        if not line:
            raise StopIteration
        encoding = "utf-8-sig" if self.offset == 0 else "utf-8"
        self.offset += len(line)
        # Undecodable bytes become U+FFFD: the row is served and the client reports it as bad.
        return line.decode(encoding, errors="replace")
