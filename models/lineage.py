"""What a model was trained on, recorded so that a retrain can learn it again.

A champion trained on the league's shots and then retrained on what one deployment's store holds
(20,000 shots of one player, say) forgets the league: that challenger was worse than a coin flip
on league shots.  So every version records its *lineage*, the sources it was trained on with
the filters that picked the shots, as the JSON tag ``lineage`` on its registered version; a
retrain replays that lineage and adds the newly labelled shots (:func:`read_lineage` here, the
store's part in :mod:`consumers.retrain_trigger`).

A source is one of:

- ``file``: a shot file (a 22-column CSV or ``.csv.gz``, or VirtualBets JSON) by its absolute
  path, with ``limit`` (the first N rows as read, as ``--limit`` takes them), ``since`` and
  ``until`` (game dates, YYYYMMDD, both included);
- ``synthetic``: the synthetic generator's games, by ``seed`` and number of ``shots``;
- ``url``: a VirtualBets HTTP API, read again as it answers now;
- ``store``: the labelled shots of a PariVision MongoDB database, by name.

Several sources are combined as :func:`models.data.combine_shots` combines them: a player's game
found in two is taken from the first.

Example:
    >>> lineage = Lineage((DataSource(FILE, "/data/a.csv", since=20171001),))
    >>> lineage = lineage.plus(DataSource(STORE, "parivision"))
    >>> Lineage.from_json(lineage.to_json()) == lineage
    True
    >>> lineage.describe()
    'a.csv since 20171001 + mongodb:parivision'
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

# The registered version's tag that holds the lineage, as JSON.
LINEAGE_TAG = "lineage"
FILE, SYNTHETIC, URL, STORE = "file", "synthetic", "url", "store"
KINDS = (FILE, SYNTHETIC, URL, STORE)
# What models.data.training_frame generates when it is given no data.
SYNTHETIC_SEED, SYNTHETIC_SHOTS = 20_240, 60_000


class LineageError(ValueError):
    """A lineage cannot be read (a file gone, a source that does not answer); says which."""


@dataclass(frozen=True)
class DataSource:
    """One source of training shots and the filters that picked them."""

    kind: str
    location: str | None = None
    limit: int | None = None
    since: int | None = None
    until: int | None = None
    seed: int | None = None
    shots: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown lineage source kind {self.kind!r}; known: {KINDS}")

    def describe(self) -> str:
        if self.kind == STORE:
            return f"mongodb:{self.location}"
        if self.kind == SYNTHETIC:
            return f"synthetic ({self.shots:,} shots, seed {self.seed})"
        name = Path(self.location or "").name if self.kind == FILE else str(self.location)
        for word, value in (("first", self.limit), ("since", self.since), ("until", self.until)):
            if value is not None:
                name += f" {word} {value}"
        return name

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Lineage:
    """The sources a version was trained on, in the order they were combined."""

    sources: tuple[DataSource, ...]
    # The recency half-life its training shots were weighted with (None: not weighted).
    half_life_days: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def plus(self, source: DataSource) -> Lineage:
        """This lineage and ``source`` (once: a source already in it is not added again)."""
        if any(_same(source, s) for s in self.sources):
            return self
        return replace(self, sources=(*self.sources, source))

    def without_stores(self) -> tuple[DataSource, ...]:
        return tuple(s for s in self.sources if s.kind != STORE)

    def stores(self) -> tuple[DataSource, ...]:
        return tuple(s for s in self.sources if s.kind == STORE)

    def describe(self) -> str:
        return " + ".join(s.describe() for s in self.sources) or "nothing"

    def to_json(self) -> str:
        body: dict[str, Any] = {"sources": [s.as_dict() for s in self.sources]}
        if self.half_life_days:
            body["half_life_days"] = self.half_life_days
        return json.dumps(body, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Lineage:
        """Raises ValueError for text that is not a lineage."""
        try:
            body = json.loads(text)
            sources = tuple(DataSource(**s) for s in body["sources"])
            half_life = body.get("half_life_days")
        except (TypeError, KeyError, json.JSONDecodeError) as error:
            raise ValueError(f"not a lineage ({error}): {text[:200]!r}") from error
        return cls(sources, float(half_life) if half_life else None)


def _same(a: DataSource, b: DataSource) -> bool:
    return a == b or (a.kind == b.kind == STORE and a.location == b.location)


def lineage_of(
    data: Iterable[str] | None,
    *,
    limit: int | None = None,
    since: int | None = None,
    until: int | None = None,
    half_life_days: float | None = None,
) -> Lineage:
    """The lineage of ``parivision train --data ... [--limit] [--since]``: each file by its
    absolute path, a URL as given, the synthetic generator when there is no data.

    Example:
        >>> lineage_of(None).sources[0].describe()
        'synthetic (60,000 shots, seed 20240)'
    """
    data = list(data or [])
    if not data:
        shots = limit or SYNTHETIC_SHOTS
        source = DataSource(SYNTHETIC, seed=SYNTHETIC_SEED, shots=shots, since=since, until=until)
        return Lineage((source,), half_life_days or None)
    sources = []
    for one in data:
        if "://" in one:
            sources.append(DataSource(URL, one, limit=limit, since=since, until=until))
        else:
            path = str(Path(one).expanduser().resolve())
            sources.append(DataSource(FILE, path, limit=limit, since=since, until=until))
    return Lineage(tuple(sources), half_life_days or None)


def filtered(frame: pd.DataFrame, source: DataSource) -> pd.DataFrame:
    """The shots of ``frame`` within the source's game dates."""
    keep = pd.Series(True, index=frame.index)
    if source.since is not None:
        keep &= frame["game_date"] >= source.since
    if source.until is not None:
        keep &= frame["game_date"] <= source.until
    return frame if bool(keep.all()) else frame[keep].reset_index(drop=True)


def read_source(
    source: DataSource, *, read_store: Callable[[str], pd.DataFrame] | None = None
) -> pd.DataFrame:
    """The labelled shots of one source, filtered as it records.

    Raises:
        LineageError: the file is not there any more, the source cannot be read, or a store
            source was asked for without ``read_store``.
    """
    from models.data import training_frame

    try:
        if source.kind == STORE:
            if read_store is None:
                raise LineageError(f"{source.describe()} needs a MongoDB connection to read")
            frame = read_store(str(source.location))
        elif source.kind == SYNTHETIC:
            frame, _ = training_frame(
                None,
                synthetic_shots=int(source.shots or SYNTHETIC_SHOTS),
                seed=int(SYNTHETIC_SEED if source.seed is None else source.seed),
            )
        else:
            if source.kind == FILE and not Path(str(source.location)).exists():
                raise LineageError(
                    f"{source.location} is not here any more: the champion was trained on it; "
                    "put it back, or retrain from other data with `parivision train`"
                )
            frame, _ = training_frame(str(source.location), limit=source.limit)
    except LineageError:
        raise
    except (OSError, ValueError) as error:
        raise LineageError(f"cannot read {source.describe()}: {error}") from error
    return filtered(frame, source) if not frame.empty else frame


def read_lineage(
    lineage: Lineage, *, read_store: Callable[[str], pd.DataFrame] | None = None
) -> list[tuple[DataSource, pd.DataFrame]]:
    """Every source of ``lineage`` read again, in its order."""
    return [(source, read_source(source, read_store=read_store)) for source in lineage.sources]
