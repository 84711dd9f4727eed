"""Loading labelled shots for batch work, in the time order the stream would see them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from parivision.schemas import CSV_COLUMNS
from producers.base import SourceShot

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


def training_frame(
    data: str | None, *, limit: int | None = None, synthetic_shots: int = 60_000
) -> tuple[pd.DataFrame, str]:
    """Labelled shots to train on, and a name for the data: a CSV as it is, anything else
    through its source (the synthetic generator when ``data`` is None)."""
    if data and (data.endswith(".csv") or data.endswith(".csv.gz")):
        return load_shots(data, limit=limit), Path(data).name
    from producers.base import SourceShot
    from producers.sources import open_source

    # A different seed from the demo's replay, so the first champion has not seen those games.
    source = open_source(data, limit=limit or (None if data else synthetic_shots), seed=20_240)
    items = [item for item in source if isinstance(item, SourceShot)]
    frame = frame_from_source_shots(items)
    sort = [c for c in ("game_date", "game_id", "game_event_id") if c in frame.columns]
    return frame.sort_values(sort, kind="stable").reset_index(drop=True), (
        Path(data).name if data and "://" not in data else (data or "synthetic")
    )
