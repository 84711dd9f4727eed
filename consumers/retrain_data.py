"""What a retrain learns from: the champion's lineage read again, plus the newly labelled shots
in the store, minus the shots the challenger will be judged on.

The store alone is a narrow slice of the league as often as not (a replay of one player's file,
one team's games), and a model trained on it forgets the rest: that is how a challenger worse
than a coin flip on league shots was once promoted.  So a retrain replays what the champion
learned (:mod:`models.lineage`) and adds the store's labelled shots; the store alone only when
``PARIVISION_RETRAIN_STORE_ONLY`` asks for it.

Two sets of shots are left out of what the challenger learns, so it is judged on shots it has
never seen: the recent window it is challenged on (the ``holdout`` most recently labelled), and
the champion's validation window (the reference set of :mod:`models.promotion.gate`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from models.data import combine_shots, shot_ids
from models.drift import shot_error
from models.lineage import LINEAGE_TAG, STORE, DataSource, Lineage, LineageError, read_source
from models.lineage import lineage_of as lineage_of_data
from parivision import schemas
from parivision.settings import Settings
from parivision.store import OUTCOME_VISIBLE_S, SHOTS, read_newest, read_range


class NotReady(Exception):
    """A retrain cannot start yet, for a reason a person can act on; the loop waits."""


def labelled_frame(db, *, holdout: int = 0, limit: int | None = None) -> pd.DataFrame:
    """Labelled shots from the store as a training frame (Shot fields and ``made``), in game
    time order, leaving out the ``holdout`` most recently labelled ones."""
    newest = read_newest(db[SHOTS], "outcome_stored_at", {"_id": 0, "raw": 1, "outcome": 1})
    cursor = itertools.islice(newest, holdout, holdout + limit if limit else None)
    rows = []
    for doc in cursor:
        try:
            shot = schemas.Shot.model_validate(doc.get("raw") or {}).model_dump()
        except schemas.ValidationError:
            continue  # stored before its attempt came, or an attempt no model can learn from
        rows.append({**shot, "made": int(doc["outcome"])})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    order = [c for c in ("game_date", "game_id", "game_event_id") if c in frame.columns]
    return frame.sort_values(order, kind="stable").reset_index(drop=True)


def recent_labelled(db, window: int) -> list[dict[str, Any]]:
    """The ``window`` most recently labelled predictions: their shot, player, team and game."""
    fields = {"_id": 0, "shot_id": 1, "player_id": 1, "team_id": 1, "game_id": 1}
    return list(read_newest(db[SHOTS], "outcome_stored_at", fields, limit=window))


def coverage(predictions: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Distinct players, teams and games among labelled predictions.

    Example:
        >>> coverage([{"player_id": 1, "team_id": 7, "game_id": 3}, {"player_id": 2}])
        {'players': 2, 'teams': 1, 'games': 1}
    """
    return {
        f"{name}s": len({p[f"{name}_id"] for p in predictions if p.get(f"{name}_id") is not None})
        for name in ("player", "team", "game")
    }


@dataclass
class TrainingData:
    """The frame a challenger learns from, and what it is made of."""

    frame: pd.DataFrame
    name: str
    lineage: Lineage
    counts: dict[str, Any] = field(default_factory=dict)


def champion_lineage(settings: Settings, version: str | None) -> Lineage | None:
    """The lineage recorded on ``version``, or None (no champion, or trained without one)."""
    from models import registry

    if version is None:
        return None
    text = registry.version_tags(settings, version).get(LINEAGE_TAG)
    if not text:
        return None
    try:
        return Lineage.from_json(text)
    except ValueError:
        return None


def training_data(
    settings: Settings,
    db,
    *,
    champion: str | None,
    leave_out: Iterable[str] = (),
    data: str | None = None,
) -> TrainingData:
    """The champion's lineage read again plus this store's labelled shots (and ``data``),
    without the shots in ``leave_out``; the store alone when the settings ask for it.

    Raises:
        NotReady: the champion records no lineage and no ``data`` was given, or a source of its
            lineage cannot be read any more; the message says what to do.
    """
    own = DataSource(STORE, settings.database())
    if settings.retrain_store_only:
        lineage = Lineage((own,))
    else:
        recorded = champion_lineage(settings, champion)
        if recorded is None and not data:
            raise NotReady(
                f"champion v{champion} does not record what it was trained on, so a retrain "
                "would learn from the store alone: give the loop --data with the files it was "
                "trained on, retrain it with `parivision train` (which records them), or set "
                "PARIVISION_RETRAIN_STORE_ONLY=true to train on the store alone"
            )
        lineage = recorded or Lineage((), settings.train_half_life_days or None)
        if data:
            for source in lineage_of_data([data]).sources:
                lineage = lineage.plus(source)
        # The store comes last: a player's game already in a file is taken from the file.
        lineage = Lineage((*lineage.without_stores(), *lineage.stores()), lineage.half_life_days)
        lineage = lineage.plus(own)

    def read_store(database: str) -> pd.DataFrame:
        return labelled_frame(db if database == settings.database() else db.client[database])

    frames, counts = [], {}
    for source in lineage.sources:
        try:
            frame = read_source(source, read_store=read_store)
        except LineageError as error:
            raise NotReady(str(error)) from error
        counts[source.describe()] = len(frame)
        if not frame.empty:
            frames.append(
                frame.assign(shot_id=shot_ids(frame)) if "shot_id" not in frame else frame
            )
    if not frames:
        raise NotReady(f"nothing to train on: {lineage.describe()} holds no labelled shots")
    combined = combine_shots(frames) if len(frames) > 1 else frames[0]
    out = set(leave_out)
    keep = ~combined["shot_id"].astype(str).isin(out)
    counts |= {
        "combined": len(combined),
        "left_out": int((~keep).sum()),
        "duplicate_rows": int(combined.attrs.get("duplicate_rows", 0)),
    }
    frame = combined[keep].reset_index(drop=True)
    return TrainingData(frame=frame, name=lineage.describe(), lineage=lineage, counts=counts)


def labelled_since(db, after: float) -> list[dict[str, Any]]:
    """Labelled predictions whose outcome was stored after ``after`` (``outcome_stored_at``, a
    range on its index, read in slices: :func:`parivision.store.read_range`), in that order."""
    return list(read_range(db[SHOTS], "outcome_stored_at", after, LABEL_FIELDS))


class NewLabels:
    """The outcomes stored since the last read, each shot once.

    A read asks for the outcomes stored after the newest one it saw, less
    :data:`~parivision.store.OUTCOME_VISIBLE_S` (a batch the sink stamped earlier may still be
    being written), and leaves out the shots it saw already.  A range on ``labelled_at`` (the
    stream's time) would miss about a quarter of them at 3,000 shots a minute: the sink stores
    outcomes out of that order.

    Example:
        >>> NewLabels(db=None, after=100.0).until
        100.0
    """

    def __init__(self, db, after: float) -> None:
        self.db, self.until = db, after
        # Before the first read, what was seen is not known (a loop restarted from its last
        # retrain's mark): the outcomes stored up to ``after`` were counted then.
        self._seen: dict[str, float] | None = None

    def read(self) -> list[dict[str, Any]]:
        """The new labelled predictions, oldest label (``labelled_at``) first."""
        docs = labelled_since(self.db, self.until - OUTCOME_VISIBLE_S)
        if self._seen is None:
            self._seen = {}
            fresh = [d for d in docs if float(d["outcome_stored_at"]) > self.until]
        else:
            fresh = [d for d in docs if d["shot_id"] not in self._seen]
        for doc in docs:
            self._seen[doc["shot_id"]] = float(doc["outcome_stored_at"])
            self.until = max(self.until, float(doc["outcome_stored_at"]))
        floor = self.until - OUTCOME_VISIBLE_S
        self._seen = {shot: at for shot, at in self._seen.items() if at > floor}
        return sorted(fresh, key=lambda d: float(d.get("labelled_at") or 0.0))


# What a poll reads of each new label: the champion's error for ADWIN, the shadow's evidence.
LABEL_FIELDS = {
    "_id": 0,
    "shot_id": 1,
    "outcome": 1,
    "p_champion": 1,
    "labelled_at": 1,
    "outcome_stored_at": 1,
    "model_version": 1,
    "p_shadow": 1,
    "shadow_version": 1,
    "scored_at": 1,
}


def errors_of(predictions: Sequence[dict[str, Any]]) -> list[float]:
    """The champion's per-shot errors, in the order given (those without a probability skipped)."""
    return [
        shot_error(p["outcome"], p["p_champion"])
        for p in predictions
        if isinstance(p.get("p_champion"), int | float)
    ]
