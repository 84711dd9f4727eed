"""Player form for the API, from each player's stored history.

The stream computes a shot's form from the outcomes of the player's earlier shots
(:mod:`models.form`).  The API has no stream tables; it rebuilds the same state from MongoDB:
every stored shot of the player whose outcome has been joined (``predictions`` with an
``outcome``), each once, in game order (date, game, event id, game clock), folded with the
same :func:`models.form.record_outcome`.  That is the state the stream holds for the player's
next attempt, and any prefix of it is the state the stream had for a stored shot.

Histories are cached per player.  Each outcome the live feed reports is folded into the cached
history as it arrives (:meth:`PlayerHistories.record`), which is when the stream folds it into
its own state, without waiting for the sink; a history is read again from MongoDB only after
``max_age_s``, in case the feed missed something (a restart of the API, say).
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from models.form import FORM_INPUT_COLUMNS, game_seconds, new_state, record_outcome
from parivision.store import PREDICTIONS, RAW

_FIELDS = (*FORM_INPUT_COLUMNS, "game_date", "game_event_id")


@dataclass
class History:
    """One player's labelled shots in game order, and the form state after all of them."""

    player_id: int
    shots: list[dict[str, Any]] = field(default_factory=list)  # form fields, shot_id, made
    state: dict[str, Any] = field(default_factory=new_state)
    # The state before the first stored shot: nothing, or the player's warm start (the history
    # the champion was trained on, Settings.form_history), as the stream's.
    start: dict[str, Any] = field(default_factory=new_state)
    index: dict[str, int] = field(default_factory=dict)  # shot_id -> position
    loaded_at: float = 0.0

    def form_state(self, shot_id: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
        """The state to score ``shot_id`` with, and which shots it includes.

        A shot stored with its outcome gets the state from the shots before it (what the
        stream computed for it); any other shot the state after every stored shot ("now").
        """
        position = self.index.get(shot_id) if shot_id is not None else None
        if position is None:
            upto, state, as_of = len(self.shots), self.state, "now"
        else:
            upto, state, as_of = position, _copy(self.start), "before this shot"
            for shot in self.shots[:position]:
                record_outcome(state, shot, shot["made"])
        last = self.shots[upto - 1] if upto else None
        return state, {
            "shots": upto,
            "last_shot_id": last["shot_id"] if last else None,
            "last_game_date": last["game_date"] if last else None,
            "as_of": as_of,
        }


def game_order(shot: Mapping[str, Any]) -> tuple:
    """Date, game, event id, then game clock: the order a replay of the file sends them in."""
    event = shot.get("game_event_id")
    return (
        shot.get("game_date") or 0,
        shot["game_id"],
        event if event is not None else 0,
        game_seconds(shot["period"], shot["minutes_remaining"], shot["seconds_remaining"]),
    )


def _copy(state: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(state))


def build_history(
    player_id: int,
    labelled: Iterable[Mapping[str, Any]],
    start: Mapping[str, Any] | None = None,
) -> History:
    """Fold a player's labelled shots (form fields, ``shot_id``, ``made``) in game order, after
    the ``start`` state (a warm start; default: nothing)."""
    shots = sorted(
        ({k: s.get(k) for k in (*_FIELDS, "shot_id", "made")} for s in labelled), key=game_order
    )
    begin = _copy(start) if start is not None else new_state()
    history = History(
        player_id=player_id,
        shots=shots,
        state=_copy(begin),
        start=begin,
        loaded_at=time.monotonic(),
    )
    for position, shot in enumerate(shots):
        record_outcome(history.state, shot, shot["made"])
        history.index[shot["shot_id"]] = position
    return history


class PlayerHistories:
    """Loads and caches :class:`History` objects from MongoDB (thread-safe)."""

    def __init__(
        self,
        db,
        *,
        max_age_s: float = 600.0,
        capacity: int = 5000,
        warm: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.db = db
        self.warm = warm or {}
        self.max_age_s = max_age_s
        self.capacity = capacity
        self._cache: OrderedDict[int, History] = OrderedDict()
        self._stale: set[int] = set()
        self._lock = threading.Lock()

    def record(self, labelled: Mapping[str, Any]) -> None:
        """Fold a labelled ``shots.scored`` record into its player's cached history; a record
        without the shot's fields makes the history reload on next use instead."""
        player_id = labelled.get("player_id")
        with self._lock:
            history = self._cache.get(player_id)
            if history is None or labelled.get("shot_id") in history.index:
                return
            shot = {k: labelled.get(k) for k in (*_FIELDS, "shot_id")}
            if any(shot[k] is None for k in FORM_INPUT_COLUMNS) or labelled.get("outcome") is None:
                self._stale.add(player_id)
                return
            shot["made"] = int(labelled["outcome"])
            # Copy on write: request threads may be reading the old state right now.
            state = {**history.state, "z": dict(history.state["z"])}
            record_outcome(state, shot, shot["made"])
            history.index[shot["shot_id"]] = len(history.shots)
            history.shots.append(shot)
            history.state = state

    def get_many(self, player_ids: Iterable[int]) -> dict[int, History]:
        wanted = set(player_ids)
        now = time.monotonic()
        found: dict[int, History] = {}
        with self._lock:
            for pid in wanted:
                history = self._cache.get(pid)
                fresh = history is not None and pid not in self._stale
                if fresh and now - history.loaded_at < self.max_age_s:
                    found[pid] = history
                    self._cache.move_to_end(pid)
        missing = wanted - found.keys()
        if missing:
            loaded = self._load(sorted(missing))
            with self._lock:
                for pid, history in loaded.items():
                    self._stale.discard(pid)
                    self._cache[pid] = history
                    self._cache.move_to_end(pid)
                while len(self._cache) > self.capacity:
                    self._cache.popitem(last=False)
            found.update(loaded)
        return found

    def _load(self, player_ids: list[int]) -> dict[int, History]:
        labelled = list(
            self.db[PREDICTIONS].find(
                {"player_id": {"$in": player_ids}, "outcome": {"$exists": True}},
                {"_id": 0, "shot_id": 1, "outcome": 1, "player_id": 1, **dict.fromkeys(_FIELDS, 1)},
            )
        )
        # Predictions stored before they carried the shot's context: take it from the raw shot.
        lacking = [d["shot_id"] for d in labelled if d.get("shot_zone_basic") is None]
        if lacking:
            raw = {
                d["shot_id"]: d
                for d in self.db[RAW].find(
                    {"shot_id": {"$in": lacking}},
                    {"_id": 0, "shot_id": 1, **dict.fromkeys(_FIELDS, 1)},
                )
            }
            labelled = [
                {**raw[d["shot_id"]], **{k: v for k, v in d.items() if v is not None}}
                if d["shot_id"] in raw
                else d
                for d in labelled
            ]
        by_player: dict[int, list[dict[str, Any]]] = {pid: [] for pid in player_ids}
        for doc in labelled:
            if all(doc.get(k) is not None for k in FORM_INPUT_COLUMNS):
                by_player[doc["player_id"]].append({**doc, "made": int(doc["outcome"])})
        return {
            pid: build_history(pid, docs, self.warm.get(str(pid)))
            for pid, docs in by_player.items()
        }
