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
from typing import TYPE_CHECKING, Any

from models.form import FORM_INPUT_COLUMNS, game_seconds, new_state, record_outcome
from parivision.store import SHOTS

if TYPE_CHECKING:
    from models.data import WarmStart

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
    latest: tuple | None = None  # the latest shot_moment of the shots
    loaded_at: float = 0.0

    def form_state(self, shot: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The state to score ``shot`` with, and which shots it includes.

        A shot stored with its outcome gets the state from the shots before it (what the
        stream computed for it); any other shot the state from the shots before its moment
        (date, game, game clock): all of them ("now") for a shot after the last one, fewer for
        a shot in the past, so an answer about a past shot never sees a later one.
        """
        position = self.index.get(shot.get("shot_id"))
        if position is not None:
            return self._replayed(range(position), "before this shot")
        moment = shot_moment(shot)
        if moment is None or self.latest is None or self.latest < moment:
            return self.state, self._describe(len(self.shots), "now")
        before = [i for i, s in enumerate(self.shots) if shot_moment(s) < moment]
        return self._replayed(before, "before this shot's moment")

    def _replayed(
        self, positions: Iterable[int], as_of: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        state, last, count = _copy(self.start), None, 0
        for i in positions:
            last = self.shots[i]
            record_outcome(state, last, last["made"])
            count += 1
        return state, self._describe(count, as_of, last)

    def _describe(
        self, count: int, as_of: str, last: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        if last is None and count:
            last = self.shots[count - 1]
        return {
            "shots": count,
            "last_shot_id": last["shot_id"] if last else None,
            "last_game_date": last["game_date"] if last else None,
            "as_of": as_of,
        }


def shot_moment(shot: Mapping[str, Any]) -> tuple | None:
    """Date, game and game clock: what "before this shot" means for a shot not stored (None
    without a date: "now")."""
    date = shot.get("game_date")
    if not date:
        return None
    return (
        date,
        shot.get("game_id") or 0,
        game_seconds(shot["period"], shot["minutes_remaining"], shot["seconds_remaining"]),
    )


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
        history.latest = _later(history.latest, shot_moment(shot))
    return history


def _later(a: tuple | None, b: tuple | None) -> tuple | None:
    return b if a is None or (b is not None and b > a) else a


class PlayerHistories:
    """Loads and caches :class:`History` objects from MongoDB (thread-safe)."""

    def __init__(
        self,
        db,
        *,
        max_age_s: float = 600.0,
        capacity: int = 5000,
        warm: Mapping[str, Mapping[str, Any]] | None = None,
        warm_start: WarmStart | None = None,
    ) -> None:
        self.db = db
        self.warm_start = warm_start
        self.warm = warm if warm is not None else (warm_start.states if warm_start else {})
        # Player id -> (which stored history, of how many shots, + the warm-start files' shots).
        self._backtest: OrderedDict[int, tuple[int, int, History]] = OrderedDict()
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
            history.latest = _later(history.latest, shot_moment(shot))
            history.state = state

    def form_state(
        self, history: History, shot: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """:meth:`History.form_state`, for a shot dated inside the warm-start files too: the
        warm state holds the player's whole file, so such a shot is scored from the file's
        shots and the stored ones before it instead (the warm state would be the future)."""
        ends = self.warm_start.last_date.get(history.player_id) if self.warm_start else None
        date = shot.get("game_date")
        if ends is None or not date or date > ends or shot.get("shot_id") in history.index:
            return history.form_state(shot)
        state, used = self._with_files(history).form_state(shot)
        return state, {**used, "warm_start": "the files' shots before this one"}

    def _with_files(self, history: History) -> History:
        with self._lock:
            cached = self._backtest.get(history.player_id)
            if cached is not None and cached[:2] == (id(history), len(history.shots)):
                return cached[2]
        files = self.warm_start.shots_of(history.player_id) if self.warm_start else []
        stored = {s["shot_id"] for s in history.shots}
        both = build_history(
            history.player_id, [*history.shots, *(s for s in files if s["shot_id"] not in stored)]
        )
        with self._lock:
            self._backtest[history.player_id] = (id(history), len(history.shots), both)
            while len(self._backtest) > 64:
                self._backtest.popitem(last=False)
        return both

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
            self.db[SHOTS].find(
                {"player_id": {"$in": player_ids}, "outcome": {"$exists": True}},
                {"_id": 0, "shot_id": 1, "outcome": 1, "player_id": 1, **dict.fromkeys(_FIELDS, 1)},
            )
        )
        # Predictions stored before they carried the shot's context: take it from the raw shot.
        lacking = [d["shot_id"] for d in labelled if d.get("shot_zone_basic") is None]
        if lacking:
            raw = {
                d["_id"]: d["raw"]
                for d in self.db[SHOTS].find({"_id": {"$in": lacking}}, {"raw": 1})
                if d.get("raw")
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
