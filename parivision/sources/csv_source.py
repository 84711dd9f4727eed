"""Shots from a 22-column NBA shots CSV file, plain or gzipped, streamed line by line."""

from __future__ import annotations

import csv
import gzip
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from parivision.rows import REQUIRED_COLUMNS, row_to_shot
from parivision.sources.base import BadRow, Source, SourceShot

__all__ = ["CsvSource"]

# Large reads keep gzip and text decoding cheap per line on the 3M-row bulk file.
_BUFFER = 1 << 20


class CsvSource(Source):
    """Yields every row of a CSV file in file order, as a shot or as a bad row.

    The file is read lazily, so a multi-million-row ``.csv.gz`` replays in constant memory.
    Only parsing and types are checked here (see :func:`parivision.rows.row_to_shot`); court
    bounds and other ranges are the stream's validation job.

    Args:
        path: A ``.csv`` file, or a ``.csv.gz`` / ``.gz`` file (chosen by suffix).

    Raises:
        FileNotFoundError: If the file does not exist (checked at once, so a typo fails early).
        ValueError: When iterating, if the file is empty or its header lacks any of the 22
            columns; the message names the file and the missing columns.

    Example:
        >>> source = CsvSource("../shared/data/nba_shots.csv")  # doctest: +SKIP
        >>> next(iter(source)).shot["shot_id"]  # doctest: +SKIP
        '29600027-102'
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"CSV file not found: {self.path}")
        self.name = f"csv:{self.path.name}"

    def __iter__(self) -> Iterator[SourceShot | BadRow]:
        with self._open() as lines:
            header = self._read_header(lines)
            width = len(header)
            name = self.path.name
            # Line 1 is the header; data starts on line 2.
            for number, line in enumerate(lines, start=2):
                text = line.rstrip("\r\n")
                if not text:
                    continue  # a blank line holds no record; the csv module skips them too
                if '"' in text:
                    try:
                        values = next(csv.reader([text], strict=True))
                    except csv.Error as exc:
                        yield BadRow(f"{name} line {number}", f"unreadable CSV: {exc}", text)
                        continue
                else:
                    values = text.split(",")
                if len(values) != width:
                    reason = f"expected {width} fields, found {len(values)}"
                    yield BadRow(f"{name} line {number}", reason, text)
                    continue
                try:
                    # Lengths were just checked; zip(strict=True) would only re-check them.
                    shot, made = row_to_shot(dict(zip(header, values)))  # noqa: B905
                except ValueError as exc:
                    yield BadRow(f"{name} line {number}", str(exc), text)
                    continue
                yield SourceShot(shot, made)

    def _open(self) -> TextIO:
        """Open as text; a bad byte becomes U+FFFD so one corrupt name cannot stop a replay."""
        if self.path.suffix.lower() == ".gz":
            raw = io.BufferedReader(gzip.GzipFile(self.path, "rb"), buffer_size=_BUFFER)
            return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace")
        return open(  # noqa: SIM115 - the caller closes it through ``with``
            self.path, encoding="utf-8-sig", errors="replace", buffering=_BUFFER
        )

    def _read_header(self, lines: TextIO) -> list[str]:
        """Read and check line 1; extra columns are allowed and ignored."""
        first = lines.readline()
        if not first.strip():
            raise ValueError(f"{self.path}: file is empty, expected a header line")
        header = [column.strip() for column in next(csv.reader([first.rstrip("\r\n")]))]
        missing = [column for column in REQUIRED_COLUMNS if column not in header]
        if missing:
            raise ValueError(
                f"{self.path}: header is missing column(s) {', '.join(map(repr, missing))}; "
                f"expected the 22-column NBA shots layout ({', '.join(REQUIRED_COLUMNS)})"
            )
        return header
