"""Reading shots, shared by the replay (producers/) and by training (models/).

A source (:mod:`parivision.sources.base`) yields shots, with their outcome when it knows it, or
bad rows: a 22-column CSV, VirtualBets JSON, the VirtualBets HTTP API, or synthetic live games.
:func:`open_source` picks the source for a ``--data`` value: nothing, a file, or an API URL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from parivision.sources.base import BadRow, Source, SourceShot
from parivision.sources.csv_source import CsvSource
from parivision.sources.http_source import VirtualBetsApiSource
from parivision.sources.json_source import VirtualBetsJsonSource
from parivision.sources.synthetic import SyntheticSource

__all__ = ["Dated", "Limited", "open_source"]

_CSV_SUFFIXES = (".csv", ".csv.gz")
_JSON_SUFFIXES = (".json", ".jsonl")


class Limited(Source):
    """Another source, up to its ``limit``-th shot.

    Bad rows pass through and do not count, as in the replay's own ``limit``: asking for
    1,000 shots gives 1,000 shots however many rows were bad on the way.

    Args:
        source: The source to read from; it stops being read once the limit is reached.
        limit: How many shots to pass on, 0 or more.
    """

    def __init__(self, source: Source, limit: int) -> None:
        if limit < 0:
            raise ValueError(f"limit must be 0 or more, got {limit}")
        self.source = source
        self.limit = limit
        self.name = source.name

    def __iter__(self) -> Iterator[SourceShot | BadRow]:
        if self.limit == 0:
            return
        shots = 0
        for item in self.source:
            yield item
            if isinstance(item, SourceShot):
                shots += 1
                if shots >= self.limit:
                    return


class Dated(Source):
    """Another source's shots of game dates ``since`` to ``until`` (YYYYMMDD, both included).

    ``nba_shots.csv`` is in game order, and its first 25,697 rows are Kobe Bryant's seasons
    (1996-2016): ``since=20181016`` starts at the 2018-19 season, every team in game order.
    Bad rows pass through (they have no date to judge).
    """

    def __init__(self, source: Source, since: int | None, until: int | None) -> None:
        if since is not None and until is not None and since > until:
            raise ValueError(f"since {since} is after until {until}")
        self.source, self.since, self.until = source, since, until
        self.name = source.name

    def __iter__(self) -> Iterator[SourceShot | BadRow]:
        since, until = self.since or 0, self.until or 99_999_999
        for item in self.source:
            if isinstance(item, SourceShot) and not since <= item.shot["game_date"] <= until:
                continue
            yield item


def open_source(
    data: str | None,
    *,
    synthetic_games: int = 10,
    seed: int = 0,
    limit: int | None = None,
    since: int | None = None,
    until: int | None = None,
) -> Source:
    """The source for ``data``.

    Args:
        data: ``None`` for synthetic games; a ``.csv`` / ``.csv.gz`` file; a ``.json`` /
            ``.jsonl`` file of VirtualBets records; or an ``http(s)://`` VirtualBets API URL.
        synthetic_games: Games to play when ``data`` is ``None``.
        seed: Seed for the synthetic games.
        limit: Stop after this many shots (bad rows do not count); ``None`` reads everything.
        since, until: Only shots of these game dates (YYYYMMDD, included; files only).

    Returns:
        The source, not yet read.

    Raises:
        FileNotFoundError: If ``data`` names a file that does not exist.
        ConnectionError: If ``data`` is a URL and nothing answers there.
        ValueError: If ``data`` is neither a URL nor a file with a known suffix.
    """
    if data is None:
        # Enough games for the limit (a real game has ~178 shots; 150 leaves a margin).
        games = max(synthetic_games, limit // 150 + 1) if limit else synthetic_games
        return SyntheticSource(games=games, seed=seed, limit=limit)
    if data.lower().startswith(("http://", "https://")):
        api = VirtualBetsApiSource(data, limit=limit)
        api.check()  # fail here, with the URL, rather than mid-replay
        return api
    name = data.lower()
    if name.endswith(_CSV_SUFFIXES):
        source: Source = CsvSource(_existing(data))
    elif name.endswith(_JSON_SUFFIXES):
        source = VirtualBetsJsonSource(_existing(data))
    else:
        raise ValueError(
            f"cannot tell what {data!r} is: give a .csv, .csv.gz, .json or .jsonl file, "
            "an http(s):// VirtualBets API URL, or nothing for synthetic games"
        )
    if since is not None or until is not None:
        source = Dated(source, since, until)
    return source if limit is None else Limited(source, limit)


def _existing(data: str) -> Path:
    path = Path(data).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    return path
