"""Each player's shots in order: player form in the stream equals player form in batch.

Batch work computes a shot's form after recording the outcome of every earlier shot of the same
player (:func:`models.form.player_form`).  Live, an outcome arrives some time after its attempt,
so a player's next attempt can arrive before the outcome of the last one.  The stream then
*holds* the attempt until that outcome is in, and so computes its form from exactly the states
batch work does, in the same order.  Waiting costs latency only when a player shoots again before
the last outcome arrived (a putback, or a replay run faster than the game).

An outcome that does not come within ``wait_s`` is given up on: the held attempts older than that
are scored without it, and when it does arrive it is still learned from and recorded (late).
"Within" is measured on the data's clock (:class:`DataClock`), not the worker's: a worker that
restarts after a crash reads the outcomes waiting in Kafka before the time it spent dead counts
against the attempts it holds.
With ``wait_s`` 0 nothing is held: each attempt is scored at once with the outcomes known then
(lowest latency; the same values as batch only when outcomes come before the next attempt).

Five tables, all keyed so that a player's records live on the partition of the player's events:

- ``players``: player id -> ``{"state": form state, "open": [event keys scored, outcome due],
  "head": n, "tail": n}`` (``head``..``tail`` number the held attempts);
- ``held``: ``"{player}#{n}"`` -> a held attempt;
- ``pending``: :func:`event_key` -> the scored record kept until its outcome;
  ``{"held": true}`` while its attempt is held; ``{"done": time, "partition": n}`` once
  joined, for ``early_ttl_s``.  So a copy Kafka redelivers after a rebalance (an attempt or an
  outcome) is known for a duplicate, not scored again or left waiting for an outcome that was
  already used;
- ``early``: :func:`event_key` -> ``[made, since, partition]``, an outcome that came before its
  attempt was scored.  One that no attempt claims within ``early_ttl_s`` (its attempt never
  came) is dropped, and counted, by :meth:`ShotFlow.expire`;
- ``seen``: :func:`event_key` -> partition, for every shot joined longer ago than
  ``early_ttl_s`` (its "done" mark moves here).  So a copy redelivered after any delay is still
  known for a duplicate and never counted twice in a player's form.  It grows by one small
  entry per shot and is never scanned (see the README for its size).

:class:`ShotFlow` works on any mutable mappings (the Faust app passes its tables, the unit tests
pass dicts).  ``scope(partition)`` is entered around every write, so each goes to the changelog
partition of the player it belongs to.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.form import form_shot, form_values, new_state, record_outcome
from streams.scoring import Scorer, compact, expand

log = logging.getLogger("parivision.stream")

Table = MutableMapping[Any, Any]


@dataclass
class _Release:
    """An attempt whose form is fixed, scored at the end of the micro-batch."""

    shot: dict[str, Any]
    form: tuple[float, ...]
    key: bytes | None
    partition: int
    made: int | None


class DataClock:
    """What time it is on one partition, as the records read so far tell it.

    For each partition and input (attempts, outcomes) it keeps the newest record timestamp read
    and the wall time it was read at; the partition's time is the earlier of the two inputs'
    ``newest timestamp + wall time since it was read``.  While records flow live, that is the
    wall clock; while a worker reads a backlog (after a restart), it is the backlog's own time,
    so an attempt is overdue only once the worker has read ``wait_s`` of data past it, outcomes
    included.  An input with nothing read since the worker started counts as caught up once
    ``grace_s`` has passed; before that the partition has no time yet (nothing is overdue).

    Example:
        >>> wall = iter([100.0, 100.0, 101.0, 105.0, 131.0]).__next__
        >>> clock = DataClock(wall, grace_s=30.0)      # started at 100
        >>> clock.saw("attempt", 0, 40.0)              # a backlog from 60 s ago, read at 100
        >>> clock.now(0) is None                       # no outcome read yet, within the grace
        True
        >>> clock.saw("outcome", 0, 42.0)              # read at 105
        >>> clock.now(0)                               # 40 + (131 - 100) vs 42 + (131 - 105)
        68.0
    """

    INPUTS = ("attempt", "outcome")

    def __init__(self, wall: Callable[[], float] = time.time, grace_s: float = 30.0) -> None:
        self.wall = wall
        self.grace_s = grace_s
        self.started = wall()
        self._seen: dict[tuple[str, int], tuple[float, float]] = {}

    def saw(self, kind: str, partition: int, timestamp: float | None) -> None:
        """A record of ``kind`` read on ``partition``, produced at ``timestamp`` (None: now)."""
        read_at = self.wall()
        at = read_at if timestamp is None else timestamp
        seen = self._seen.get((kind, partition))
        self._seen[(kind, partition)] = (at if seen is None else max(at, seen[0]), read_at)

    def now(self, partition: int) -> float | None:
        wall = self.wall()
        times = []
        for kind in self.INPUTS:
            seen = self._seen.get((kind, partition))
            if seen is not None:
                newest, read_at = seen
                times.append(newest + (wall - read_at))
            elif wall - self.started >= self.grace_s:
                times.append(wall)  # nothing came on this input: it is caught up
            else:
                return None
        return min(times)


def event_key(record: dict[str, Any]) -> str:
    """What the tables key a shot by: its id and the replay that sent it.

    A shot replayed again (another ``replay_id``) is a new event to score and join; a copy
    Kafka redelivers (the same replay) is a duplicate.
    """
    return f"{record['shot_id']}@{record.get('replay_id', '')}"


# Per player, the event keys of the last outcomes folded into its form (see ShotFlow._resolve).
FOLDED_KEPT = 32


def _remember_folded(entry: dict[str, Any], shot_id: str) -> None:
    folded = entry.setdefault("folded", [])
    folded.append(shot_id)
    del folded[:-FOLDED_KEPT]


def _key_text(key: bytes | None) -> str | None:
    return None if key is None else key.decode("latin-1")


def _key_bytes(key: str | None) -> bytes | None:
    return None if key is None else key.encode("latin-1")


class ShotFlow:
    """Orders a partition's attempts and outcomes per player, and scores and labels them.

    Call :meth:`attempt` and :meth:`outcome` for the events of a micro-batch in the order they
    arrived, then :meth:`finish`, which scores the attempts released in the batch in one call to
    the champion and returns the records to publish.  :meth:`expire`, called from a timer, gives
    up on overdue outcomes.
    """

    def __init__(
        self,
        scorer: Scorer,
        *,
        players: Table,
        held: Table,
        pending: Table,
        early: Table,
        seen: Table | None = None,
        scope: Callable[[int], AbstractContextManager[Any]] = lambda partition: nullcontext(),
        wait_s: float = 30.0,
        early_ttl_s: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.scorer = scorer
        self.players, self.held, self.pending, self.early = players, held, pending, early
        self.seen: Table = {} if seen is None else seen
        self.scope = scope
        self.wait_s = wait_s
        self.early_ttl_s = early_ttl_s
        self.clock = clock
        self.data_clock = DataClock(clock, grace_s=wait_s)
        self._next_sweep = clock() + early_ttl_s
        self._released: list[_Release] = []
        self._released_by_id: dict[str, _Release] = {}
        self._labels: list[tuple[bytes | None, dict[str, Any], int]] = []
        # Player -> (data time of its oldest held attempt, its partition); None until read
        # from the table.
        self._waiting: dict[str, tuple[float, int]] | None = None
        self.duplicates = 0
        self.given_up = 0
        self.unclaimed = 0

    # -- events ------------------------------------------------------------------------------

    def attempt(
        self,
        shot: dict[str, Any],
        key: bytes | None,
        partition: int,
        at: float | None = None,
    ) -> None:
        """A validated attempt: score it in this batch, or hold it behind the player's open
        shots.  ``at`` is when it was produced (its Kafka timestamp; None: now)."""
        self.data_clock.saw("attempt", partition, at)
        shot_id, player = event_key(shot), str(shot["player_id"])
        with self.scope(partition):
            entry = self.players.get(player) or self._new_entry()
            self._skip_released(player, entry)
            seen = shot_id in self._released_by_id or shot_id in entry["open"]
            if seen or shot_id in self.pending or shot_id in self.seen:
                self.duplicates += 1
                log.warning("attempt %s arrived again; it is already scored", shot_id)
                return
            if self.wait_s <= 0:  # never hold: form from the outcomes known now
                self._release(entry, shot, key, partition, block=False)
                self.players[player] = entry
                return
            if entry["open"] or entry["head"] < entry["tail"]:
                now = self.clock() if at is None else at
                self.pending[shot_id] = {"held": True}
                self.held[f"{player}#{entry['tail']}"] = {
                    "shot": shot,
                    "key": _key_text(key),
                    "partition": partition,
                    "since": now,
                }
                if entry["head"] == entry["tail"]:
                    self._note_waiting(player, now, partition)
                entry["tail"] += 1
            else:
                self._release(entry, shot, key, partition)
            self.players[player] = entry

    def outcome(
        self,
        outcome: dict[str, Any],
        key: bytes | None,
        partition: int,
        at: float | None = None,
    ) -> None:
        """A validated outcome: join it to its prediction and let the player's next shot go.
        ``at`` is when it was produced (its Kafka timestamp; None: now)."""
        self.data_clock.saw("outcome", partition, at)
        shot_id, made = event_key(outcome), outcome["made"]
        with self.scope(partition):
            released = self._released_by_id.get(shot_id)
            if released is not None:
                if released.made is not None:
                    self.duplicates += 1
                    return
                released.made = made
                player = str(released.shot["player_id"])
                self._resolve(player, form_shot(released.shot), shot_id, made)
                return
            if shot_id in self.seen:
                self.duplicates += 1  # redelivered long after it was joined
                return
            kept = self.pending.get(shot_id)
            if kept is not None and "done" in kept:
                self.duplicates += 1  # redelivered: this outcome was joined already
                self._refold(str(outcome["player_id"]), kept, shot_id, made)
                return
            if kept is not None and not kept.get("held"):
                self.pending[shot_id] = {
                    "done": self.clock(),
                    "partition": partition,
                    "form_shot": kept["form_shot"],
                }
                kept = expand(kept)
                self._labels.append((key, kept, made))
                self._resolve(str(kept["player_id"]), kept["form_shot"], shot_id, made)
                return
            # Its attempt is held, or not here yet: it is picked up when the attempt is released.
            self.early[shot_id] = [made, self.clock(), partition]

    def finish(self) -> list[tuple[bytes | None, dict[str, Any]]]:
        """Score what this batch released, keep or label it, and label the joined outcomes;
        return ``(key, record)`` pairs to publish on ``shots.scored``, in order."""
        released, self._released, self._released_by_id = self._released, [], {}
        labels, self._labels = self._labels, []
        out: list[tuple[bytes | None, dict[str, Any]]] = []
        if released:
            form = np.array([r.form for r in released], dtype=np.float64)
            records = self.scorer.score_batch([r.shot for r in released], form=form)
            for item, record in zip(released, records, strict=True):
                out.append((item.key, record))
                if item.made is None:
                    with self.scope(item.partition):
                        self.pending[event_key(record)] = {
                            **compact(record),
                            "form_shot": form_shot(item.shot),
                        }
                else:
                    with self.scope(item.partition):
                        self.pending[event_key(record)] = {
                            "done": self.clock(),
                            "partition": item.partition,
                            "form_shot": form_shot(item.shot),
                        }
                    out.append((item.key, self.scorer.label(record, item.made)))
        for key, kept, made in labels:
            out.append((key, self.scorer.label(kept, made)))
        return out

    def expire(self, owns: Callable[[int], bool] = lambda partition: True) -> int:
        """Release attempts held longer than ``wait_s`` of their partition's data time (see
        :class:`DataClock`), scored without the outcomes they waited for; return how many.
        ``owns(partition)`` says whether this worker still has it."""
        if self._waiting is None:
            self._waiting = dict(self._scan())
        wall = self.clock()
        if wall >= self._next_sweep:
            self._next_sweep = wall + min(self.early_ttl_s, 60.0)
            self._sweep(wall, owns)
        count = 0
        for player, (since, partition) in list(self._waiting.items()):
            now = self.data_clock.now(partition)
            if now is None or now - since < self.wait_s:
                continue
            entry = self.players.get(player)
            if entry is not None:
                with self.scope(partition):
                    self._skip_released(player, entry)
            if entry is None or entry["head"] >= entry["tail"]:
                self._waiting.pop(player, None)
                continue
            first = self.held[f"{player}#{entry['head']}"]
            if not owns(first["partition"]):
                self._waiting.pop(player, None)
                continue
            with self.scope(first["partition"]):
                given_up, entry["open"] = entry["open"], []
                count += self._drain(player, entry, older_than=now - self.wait_s)
                self.players[player] = entry
            self.given_up += len(given_up)
            log.warning(
                "player %s: no outcome for %s after %.0f s; scored the attempts waiting on it "
                "without it",
                player,
                ", ".join(given_up) or "its last shot",
                self.wait_s,
            )
        return count

    def forget_waiting(self) -> None:
        """After a rebalance: read who is waiting from the table again on the next expire."""
        self._waiting = None

    # -- inside ------------------------------------------------------------------------------

    @staticmethod
    def _new_entry() -> dict[str, Any]:
        return {"state": new_state(), "open": [], "head": 0, "tail": 0}

    def _release(
        self,
        entry: dict[str, Any],
        shot: dict[str, Any],
        key: bytes | None,
        partition: int,
        *,
        block: bool = True,
    ) -> None:
        shot_id = event_key(shot)
        item = _Release(shot, form_values(entry["state"], shot), key, partition, None)
        self._released.append(item)
        self._released_by_id[shot_id] = item
        early = self.early.get(shot_id)
        made = early[0] if early is not None else None
        if early is not None:
            del self.early[shot_id]
            item.made = made
            record_outcome(entry["state"], shot, made)
            _remember_folded(entry, shot_id)
        elif block:
            entry["open"].append(shot_id)

    def _resolve(self, player: str, shot: dict[str, Any], shot_id: str, made: int) -> None:
        entry = self.players.get(player) or self._new_entry()
        if shot_id in entry["open"]:
            entry["open"].remove(shot_id)
        elif shot_id in entry.get("folded", ()):
            # Folded already: the pending table lost its "done" mark in a crash, the players
            # table did not.  Counting it again would be a shot the player never took.
            log.warning("outcome of %s is in %s's form already; not counted twice", shot_id, player)
            self._drain(player, entry)
            self.players[player] = entry
            return
        else:
            log.debug("outcome of %s arrived after its player's next shots were scored", shot_id)
        record_outcome(entry["state"], shot, made)
        _remember_folded(entry, shot_id)
        self._drain(player, entry)
        self.players[player] = entry

    def _refold(self, player: str, done: dict[str, Any], shot_id: str, made: int) -> None:
        """A redelivered outcome whose join is recorded: if the player's form has not seen it
        (the players table lost that write in a crash; the pending table did not), fold it now,
        so the attempts behind it are not held until they are overdue."""
        entry = self.players.get(player)
        if entry is None or shot_id not in entry["open"] or "form_shot" not in done:
            return
        log.warning(
            "outcome of %s was joined but %s's form had not seen it; folded now", shot_id, player
        )
        self._resolve(player, done["form_shot"], shot_id, made)

    def _skip_released(self, player: str, entry: dict[str, Any]) -> None:
        """Move the player's head past held attempts that are gone from ``held``.

        Released attempts are deleted from ``held`` before the player's entry moves its head;
        the two tables have changelogs of their own, and a worker killed between the two
        writes comes back with a head that points at a released attempt.  That attempt was
        scored (or its input is redelivered and held again at the tail): skip it.
        """
        while entry["head"] < entry["tail"] and f"{player}#{entry['head']}" not in self.held:
            log.warning(
                "player %s: held attempt #%d is gone (a crash); skipped", player, entry["head"]
            )
            entry["head"] += 1
            self.players[player] = entry

    def _drain(self, player: str, entry: dict[str, Any], *, older_than: float = -1.0) -> int:
        """Release held attempts in order while nothing is open; those that arrived before
        ``older_than`` go even so, without holding up the rest."""
        count = 0
        self._skip_released(player, entry)
        while entry["head"] < entry["tail"]:
            name = f"{player}#{entry['head']}"
            item = self.held.get(name)
            if item is None:
                self._skip_released(player, entry)
                continue
            overdue = item["since"] < older_than
            if entry["open"] and not overdue:
                break
            del self.held[name]
            if event_key(item["shot"]) in self.pending:  # its "held" mark
                del self.pending[event_key(item["shot"])]
            entry["head"] += 1
            self._release(
                entry, item["shot"], _key_bytes(item["key"]), item["partition"], block=not overdue
            )
            count += 1
        if entry["head"] < entry["tail"]:
            first = self.held[f"{player}#{entry['head']}"]
            self._note_waiting(player, first["since"], first["partition"])
        elif self._waiting is not None:
            self._waiting.pop(player, None)
        return count

    def _sweep(self, now: float, owns: Callable[[int], bool]) -> None:
        """Forget unclaimed outcomes older than ``early_ttl_s``; joined shots that old keep
        only a mark in ``seen``."""
        ttl = self.early_ttl_s
        unclaimed = [
            (key, partition)
            for key, (_, since, partition) in list(self.early.items())
            if now - since >= ttl
        ]
        done = [
            (key, kept["partition"])
            for key, kept in list(self.pending.items())
            if "done" in kept and now - kept["done"] >= ttl
        ]
        for table, entries in ((self.early, unclaimed), (self.pending, done)):
            for key, partition in entries:
                if owns(partition):
                    with self.scope(partition):
                        if table is self.pending:
                            self.seen[key] = partition
                        del table[key]
        self.unclaimed += len(unclaimed)
        if unclaimed:
            log.warning(
                "dropped %d outcomes no attempt claimed within %.0f s (attempts that never came)",
                len(unclaimed),
                ttl,
            )

    def _note_waiting(self, player: str, since: float, partition: int) -> None:
        if self._waiting is not None:
            self._waiting[player] = (since, partition)

    def _scan(self) -> Iterator[tuple[str, tuple[float, int]]]:
        for player, entry in list(self.players.items()):
            if entry and entry["head"] < entry["tail"]:
                first = self.held.get(f"{player}#{entry['head']}")
                if first is not None:
                    yield player, (first["since"], first["partition"])
