"""Loading labelled shots for batch work, in the time order the stream would see them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from parivision.schemas import CSV_COLUMNS
from parivision.sources.base import SourceShot

_INT_COLUMNS = {
    "game_id",
    "player_id",
    "team_id",
    "period",
    "minutes_remaining",
    "seconds_remaining",
    "shot_distance",
    "x",
    "y",
    "made",
    "game_date",
}


def load_shots(path: str | Path, *, limit: int | None = None) -> pd.DataFrame:
    """Read a 22-column CSV (or ``.csv.gz``) into a frame with :class:`Shot` field names.

    Rows come back sorted by game date, game and event, so a split on position is a split in
    time.  Rows whose required values are missing are dropped and counted in
    ``frame.attrs["dropped_rows"]``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no shot file at {path}")
    frame = pd.read_csv(path, nrows=limit, low_memory=False)
    missing = sorted(set(CSV_COLUMNS) - set(frame.columns))
    if missing:
        raise ValueError(f"{path}: missing columns {', '.join(missing)}")
    frame = frame.rename(columns=CSV_COLUMNS)[list(CSV_COLUMNS.values())]
    before = len(frame)
    frame = frame.dropna(subset=sorted(_INT_COLUMNS))
    for column in _INT_COLUMNS:
        frame[column] = frame[column].astype("int64")
    for column in (
        "action_type",
        "shot_type",
        "shot_zone_basic",
        "shot_zone_area",
        "shot_zone_range",
        "season_type",
    ):
        frame[column] = frame[column].fillna("").astype(str)
    frame = frame.sort_values(["game_date", "game_id", "game_event_id"], kind="stable")
    frame = frame.reset_index(drop=True)
    frame.attrs["dropped_rows"] = before - len(frame)
    return frame


def frame_from_source_shots(items: list[SourceShot]) -> pd.DataFrame:
    """A training frame from source items (for the synthetic generator and JSON/HTTP sources)."""
    rows = [{**item.shot, "made": item.made} for item in items if item.made is not None]
    return pd.DataFrame(rows)


def combine_shots(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Several shot frames as one, in time order, each player's game taken from the first frame
    that has it.

    The files overlap: ``nba_shots.csv`` holds Kobe Bryant's career and the bulk file every
    player's regular seasons 2003-18, so his games would count twice (and twice in his form).
    Matching whole player-games rather than single shots is what works across files that do not
    share event ids (the bulk file has none).  The number of rows dropped is in
    ``frame.attrs["duplicate_rows"]``.

    Example:
        >>> a = pd.DataFrame({"game_id": [1, 1], "player_id": [7, 8], "game_date": [2, 2],
        ...                   "game_event_id": [5, 6]})
        >>> b = pd.DataFrame({"game_id": [1, 3], "player_id": [7, 7], "game_date": [2, 1],
        ...                   "game_event_id": [None, None]})
        >>> both = combine_shots([a, b])
        >>> both["game_id"].tolist(), both.attrs["duplicate_rows"]
        ([3, 1, 1], 1)
    """
    kept: list[pd.DataFrame] = []
    seen: pd.MultiIndex | None = None
    duplicates = 0
    for frame in frames:
        games = pd.MultiIndex.from_frame(frame[["game_id", "player_id"]])
        if seen is not None:
            new = ~games.isin(seen)
            duplicates += int((~new).sum())
            frame, games = frame[new], games[new]
        seen = games.unique() if seen is None else seen.append(games.unique()).unique()
        kept.append(frame)
    combined = pd.concat(kept, ignore_index=True) if len(kept) > 1 else kept[0].copy()
    sort = [c for c in ("game_date", "game_id", "game_event_id") if c in combined.columns]
    combined = combined.sort_values(sort, kind="stable").reset_index(drop=True)
    combined.attrs["duplicate_rows"] = duplicates
    return combined


def training_frames(
    data: Sequence[str] | None,
    *,
    limit: int | None = None,
    since: int | None = None,
    until: int | None = None,
) -> tuple[pd.DataFrame, str]:
    """Labelled shots from one or several sources as one frame (:func:`combine_shots`), with
    only the shots on or after game date ``since`` and on or before ``until`` when given; the
    name joins the sources'.  :func:`models.lineage.lineage_of` records the same arguments."""
    if not data:
        frame, name = training_frame(None, limit=limit)
    else:
        loaded = [training_frame(one, limit=limit) for one in data]
        frame = loaded[0][0] if len(loaded) == 1 else combine_shots([f for f, _ in loaded])
        name = "+".join(n for _, n in loaded)
    if since is not None:
        frame = frame[frame["game_date"] >= since].reset_index(drop=True)
        if frame.empty:
            raise ValueError(f"{name}: no shots on or after {since}")
        name = f"{name} since {since}"
    if until is not None:
        frame = frame[frame["game_date"] <= until].reset_index(drop=True)
        if frame.empty:
            raise ValueError(f"{name}: no shots on or before {until}")
        name = f"{name} until {until}"
    return frame, name


def training_frame(
    data: str | None,
    *,
    limit: int | None = None,
    synthetic_shots: int = 60_000,
    seed: int = 20_240,
) -> tuple[pd.DataFrame, str]:
    """Labelled shots to train on, and a name for the data: a CSV as it is, anything else
    through its source (the synthetic generator when ``data`` is None)."""
    if data and (data.endswith(".csv") or data.endswith(".csv.gz")):
        return load_shots(data, limit=limit), Path(data).name
    from parivision.sources import open_source
    from parivision.sources.base import SourceShot

    # A different seed from the demo's replay, so the first champion has not seen those games.
    source = open_source(data, limit=limit or (None if data else synthetic_shots), seed=seed)
    items = [item for item in source if isinstance(item, SourceShot)]
    frame = frame_from_source_shots(items)
    sort = [c for c in ("game_date", "game_id", "game_event_id") if c in frame.columns]
    return frame.sort_values(sort, kind="stable").reset_index(drop=True), (
        Path(data).name if data and "://" not in data else (data or "synthetic")
    )


def warm_form(data: Sequence[str] | str) -> tuple[dict[str, dict[str, Any]], int]:
    """Each player's form after the shots in ``data`` (files as ``parivision train --data``
    takes them, or one comma-separated text as ``Settings.form_history`` holds them), and how
    many shots that was."""
    if isinstance(data, str):
        data = [part.strip() for part in data.split(",") if part.strip()]
    if not data:
        return {}, 0
    from models.form import form_states

    frame, _ = training_frames(data)
    return form_states(frame), len(frame)


@dataclass
class WarmStart:
    """Each player's form after the warm-start files, and the shots it came from, so an answer
    about a shot dated inside those files can take only the shots before it (a backtest must
    not see the future)."""

    states: dict[str, dict[str, Any]]
    shots: int
    last_date: dict[int, int]  # player id -> date of the player's last shot in the files
    _frame: pd.DataFrame
    _rows: dict[int, Any] | None = None

    def shots_of(self, player_id: int) -> list[dict[str, Any]]:
        """The player's labelled shots in the files (form fields, ``game_date``,
        ``game_event_id``, ``shot_id``, ``made``), in file order."""
        if self._rows is None:
            self._rows = self._frame.groupby("player_id", sort=False).indices
        rows = self._rows.get(player_id)
        if rows is None:
            return []
        mine = self._frame.iloc[rows]
        out = mine.drop(columns=["game_event_id"]).to_dict("records")
        events = mine["game_event_id"].tolist()
        for shot, event, shot_id in zip(out, events, shot_ids(mine).tolist(), strict=True):
            shot["game_event_id"] = None if pd.isna(event) else int(event)
            shot["shot_id"] = shot_id
        return out


def warm_start(data: Sequence[str] | str) -> WarmStart:
    """:func:`warm_form`, keeping the few columns a player's form is rebuilt from."""
    from models.form import FORM_INPUT_COLUMNS, form_states

    if isinstance(data, str):
        data = [part.strip() for part in data.split(",") if part.strip()]
    if not data:
        return WarmStart({}, 0, {}, pd.DataFrame())
    frame, _ = training_frames(data)
    keep = [*FORM_INPUT_COLUMNS, "game_date", "game_event_id", "made"]
    if "shot_id" in frame.columns:
        keep.append("shot_id")
    kept = frame[[c for c in keep if c in frame.columns]].copy()
    if "game_event_id" not in kept.columns:
        kept["game_event_id"] = pd.NA
    kept["shot_zone_basic"] = kept["shot_zone_basic"].astype("category")
    last = kept.groupby("player_id")["game_date"].max()
    return WarmStart(
        form_states(frame),
        len(frame),
        {int(k): int(v) for k, v in last.items()},
        kept,
    )


def shot_ids(frame: pd.DataFrame) -> pd.Series:
    """Each shot's id as the stream and the store key it (:func:`parivision.schemas.shot_id_for`):
    ``{game}-{event}``, or a stable hash of the shot's moment where a source has no event id.

    Example:
        >>> shot_ids(pd.DataFrame({"game_id": [21800001], "game_event_id": [7]})).tolist()
        ['21800001-7']
    """
    from parivision.schemas import shot_id_for

    if "shot_id" in frame.columns:
        return frame["shot_id"].astype(str)
    events = frame["game_event_id"] if "game_event_id" in frame.columns else None
    if events is None:
        events = pd.Series(pd.NA, index=frame.index)
    known = events.notna()
    out = pd.Series("", index=frame.index, dtype=object)
    if known.any():
        games = frame.loc[known, "game_id"].astype("int64").astype(str)
        out[known] = games + "-" + events[known].astype("int64").astype(str)
    if not known.all():
        fields = ("period", "minutes_remaining", "seconds_remaining", "player_id", "x", "y")
        rest = frame.loc[~known]
        columns = [rest[k].tolist() if k in rest.columns else [""] * len(rest) for k in fields]
        out[~known] = [
            shot_id_for(game, None, **dict(zip(fields, values, strict=True)))
            for game, *values in zip(rest["game_id"].tolist(), *columns, strict=True)
        ]
    return out
