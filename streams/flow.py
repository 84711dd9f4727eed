"""Each player's shots in order: player form in the stream equals player form in batch.

Batch work computes a shot's form after recording the outcome of every earlier shot of the same
player (:func:`models.form.player_form`).  Live, an outcome arrives some time after its attempt,
so a player's next attempt can arrive before the outcome of the last one.  The stream then
*holds* the attempt until that outcome is in, and so computes its form from exactly the states
batch work does, in the same order.  Waiting costs latency only when a player shoots again before
the last outcome arrived (a putback, or a replay run faster than the game).

An outcome that does not come within ``wait_s`` is given up on: the held attempts older than that
are scored without it, and when it does arrive it is still learned from and recorded (late).
"Within" is measured on the data's clock (:class:`streams.dataclock.DataClock`), not the
worker's: a worker that restarts after a crash reads the outcomes waiting in Kafka before the time
it spent dead counts against the attempts it holds.
With ``wait_s`` 0 nothing is held: each attempt is scored at once with the outcomes known then
(lowest latency; the same values as batch only when outcomes come before the next attempt).

Everything the flow keeps about a player is one entry of the ``players`` table
(:mod:`streams.entries`), so that each change is one changelog record: a worker killed at any
moment comes back with every player as it was after some micro-batch, never half-way through one.
Entries read during a micro-batch are written once, by :meth:`ShotFlow.finish` (or at the end of
:meth:`ShotFlow.expire`), whatever happened to them in the batch.

:class:`ShotFlow` works on any mutable mappings (the Faust app passes its tables, the unit tests
pass dicts).  ``scope(partition)`` is entered around every write, so each goes to the changelog
partition of the player it belongs to.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.form import form_shot, form_values, record_outcome
from streams.dataclock import DataClock
from streams.entries import event_key, key_bytes, key_text, new_entry
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


class ShotFlow:
    """Orders a partition's attempts and outcomes per player, and scores and labels them.

    Call :meth:`attempt` and :meth:`outcome` for the events of a micro-batch in the order they
    arrived, then :meth:`finish`, which scores the attempts released in the batch in one call to
    the champion, writes the players' entries and returns the records to publish.
    :meth:`expire`, called from a timer, gives up on overdue outcomes.
    """

    def __init__(
        self,
        scorer: Scorer,
        *,
        players: Table,
        seen: Table | None = None,
        scope: Callable[[int], AbstractContextManager[Any]] = lambda partition: nullcontext(),
        wait_s: float = 30.0,
        early_ttl_s: float = 300.0,
        clock: Callable[[], float] = time.time,
        warm: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:
        self.scorer = scorer
        # Player -> form state to start from when the table has no entry for the player yet
        # (models.form.form_states of the history the champion was trained on).
        self.warm = warm or {}
        self.players = players
        self.seen: Table = {} if seen is None else seen
        self.scope = scope
        self.wait_s = wait_s
        self.early_ttl_s = early_ttl_s
        self.clock = clock
        self.data_clock = DataClock(clock, grace_s=wait_s)
        self._next_sweep = clock() + early_ttl_s
        # Entries read since the last write, and the partition each is written under.
        self._touched: dict[str, tuple[dict[str, Any], int]] = {}
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
        entry = self._entry(player, partition)
        if self._known(entry, shot_id):
            self.duplicates += 1
            log.warning("attempt %s arrived again; it is already scored", shot_id)
            return
        if self.wait_s <= 0:  # never hold: form from the outcomes known now
            self._release(entry, shot, key, partition, block=False)
            return
        if entry["open"] or entry["held"]:
            since = self.clock() if at is None else at
            entry["held"].append(
                {"shot": shot, "key": key_text(key), "partition": partition, "since": since}
            )
            if len(entry["held"]) == 1:
                self._note_waiting(player, since, partition)
        else:
            self._release(entry, shot, key, partition)

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
        shot_id, made, player = event_key(outcome), outcome["made"], str(outcome["player_id"])
        entry = self._entry(player, partition)
        released = self._released_by_id.get(shot_id)
        if released is not None:
            if released.made is not None:
                self.duplicates += 1
                return
            released.made = made
            self._resolve(player, entry, form_shot(released.shot), shot_id, made)
            return
        if shot_id in entry["done"] or shot_id in self.seen or shot_id in entry["early"]:
            self.duplicates += 1  # redelivered: this outcome was joined (or is kept) already
            return
        kept = entry["pending"].pop(shot_id, None)
        if kept is not None:
            entry["done"][shot_id] = [self.clock(), partition]
            self._labels.append((key, expand(kept), made))
            self._resolve(player, entry, kept["form_shot"], shot_id, made)
            return
        # Its attempt is held, or not here yet: it is picked up when the attempt is released.
        entry["early"][shot_id] = [made, self.clock(), partition]

    def finish(self) -> list[tuple[bytes | None, dict[str, Any]]]:
        """Score what this batch released, keep or label it, label the joined outcomes, and
        write every player entry the batch touched; return ``(key, record)`` pairs to publish
        on ``shots.scored``, in order."""
        released, self._released, self._released_by_id = self._released, [], {}
        labels, self._labels = self._labels, []
        out: list[tuple[bytes | None, dict[str, Any]]] = []
        if released:
            form = np.array([r.form for r in released], dtype=np.float64)
            records = self.scorer.score_batch([r.shot for r in released], form=form)
            for item, record in zip(released, records, strict=True):
                out.append((item.key, record))
                entry, _ = self._touched[str(item.shot["player_id"])]
                shot_id = event_key(record)
                if item.made is None:
                    entry["pending"][shot_id] = {
                        **compact(record),
                        "form_shot": form_shot(item.shot),
                    }
                else:
                    entry["done"][shot_id] = [self.clock(), item.partition]
                    out.append((item.key, self.scorer.label(record, item.made)))
        for key, kept, made in labels:
            out.append((key, self.scorer.label(kept, made)))
        self._write()
        return out

    def expire(self, owns: Callable[[int], bool] = lambda partition: True) -> int:
        """Release attempts held longer than ``wait_s`` of their partition's data time (see
        :class:`streams.dataclock.DataClock`), scored without the outcomes they waited for;
        return how many, which :meth:`finish` then scores.  ``owns(partition)`` says whether
        this worker still has it."""
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
            stored = self.players.get(player)
            if not stored or not stored.get("held") or not owns(stored["held"][0]["partition"]):
                self._waiting.pop(player, None)
                continue
            entry = self._entry(player, stored["held"][0]["partition"])
            given_up, entry["open"] = entry["open"], []
            count += self._drain(player, entry, older_than=now - self.wait_s)
            self.given_up += len(given_up)
            log.warning(
                "player %s: no outcome for %s after %.0f s; scored the attempts waiting on it "
                "without it",
                player,
                ", ".join(given_up) or "its last shot",
                self.wait_s,
            )
        if not self._released:
            self._write()  # nothing for finish() to score: write what the sweep changed now
        return count

    def forget_waiting(self) -> None:
        """After a rebalance: read who is waiting from the table again on the next expire."""
        self._waiting = None

    def assigned(self, partitions: Iterable[int]) -> None:
        """Partitions newly given to this worker: what it holds there waits for what it reads
        there (see :meth:`streams.dataclock.DataClock.assigned`)."""
        self.data_clock.assigned(partitions)
        self._waiting = None

    def held_count(self) -> int:
        """Attempts held now, over every player in the table."""
        return sum(len(entry.get("held") or ()) for entry in list(self.players.values()) if entry)

    # -- inside ------------------------------------------------------------------------------

    def _entry(self, player: str, partition: int) -> dict[str, Any]:
        """The player's entry, read once per batch and written back by :meth:`_write`."""
        touched = self._touched.get(player)
        if touched is not None:
            return touched[0]
        stored = self.players.get(player)
        if stored:
            entry = {**new_entry(), **stored}
        else:
            warm = self.warm.get(player)
            entry = new_entry(json.loads(json.dumps(warm)) if warm is not None else None)
        for gone in ("head", "tail", "folded"):  # an entry written by an older version
            entry.pop(gone, None)
        self._touched[player] = (entry, partition)
        return entry

    def _write(self) -> None:
        touched, self._touched = self._touched, {}
        for player, (entry, partition) in touched.items():
            with self.scope(partition):
                self.players[player] = entry

    def _known(self, entry: dict[str, Any], shot_id: str) -> bool:
        """Whether an attempt was taken already: scored, held, joined or long since joined."""
        return (
            shot_id in self._released_by_id
            or shot_id in entry["pending"]
            or shot_id in entry["done"]
            or shot_id in entry["open"]
            or any(event_key(item["shot"]) == shot_id for item in entry["held"])
            or shot_id in self.seen
        )

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
        early = entry["early"].pop(shot_id, None)
        if early is not None:
            item.made = early[0]
            record_outcome(entry["state"], shot, item.made)
        elif block:
            entry["open"].append(shot_id)

    def _resolve(
        self, player: str, entry: dict[str, Any], shot: dict[str, Any], shot_id: str, made: int
    ) -> None:
        if shot_id in entry["open"]:
            entry["open"].remove(shot_id)
        else:
            log.debug("outcome of %s arrived after its player's next shots were scored", shot_id)
        record_outcome(entry["state"], shot, made)
        self._drain(player, entry)

    def _drain(self, player: str, entry: dict[str, Any], *, older_than: float = -1.0) -> int:
        """Release held attempts in order while nothing is open; those that arrived before
        ``older_than`` go even so, without holding up the rest."""
        count = 0
        held = entry["held"]
        while held:
            overdue = held[0]["since"] < older_than
            if entry["open"] and not overdue:
                break
            item = held.pop(0)
            self._release(
                entry, item["shot"], key_bytes(item["key"]), item["partition"], block=not overdue
            )
            count += 1
        if held:
            self._note_waiting(player, held[0]["since"], held[0]["partition"])
        elif self._waiting is not None:
            self._waiting.pop(player, None)
        return count

    def _sweep(self, now: float, owns: Callable[[int], bool]) -> None:
        """Drop outcomes no attempt claimed within ``early_ttl_s``; move joined shots older
        than that to ``seen`` (written one sweep before they leave the entry)."""
        ttl = self.early_ttl_s
        unclaimed = 0
        for player, stored in list(self.players.items()):
            if not stored:
                continue
            old_early = [
                k for k, (_, since, _) in stored.get("early", {}).items() if now - since >= ttl
            ]
            old_done = [
                (k, partition)
                for k, (joined, partition) in stored.get("done", {}).items()
                if now - joined >= ttl
            ]
            if not (old_early or old_done):
                continue
            partitions = [p for _, p in old_done] + [stored["early"][k][2] for k in old_early]
            partition = partitions[0]
            if not owns(partition):
                continue
            entry = self._entry(player, partition)
            for k in old_early:
                del entry["early"][k]
            unclaimed += len(old_early)
            for k, done_partition in old_done:
                if k in self.seen:
                    del entry["done"][k]
                else:
                    with self.scope(done_partition):
                        self.seen[k] = done_partition
        self.unclaimed += unclaimed
        if unclaimed:
            log.warning(
                "dropped %d outcomes no attempt claimed within %.0f s (attempts that never came)",
                unclaimed,
                ttl,
            )

    def _note_waiting(self, player: str, since: float, partition: int) -> None:
        if self._waiting is not None:
            self._waiting[player] = (since, partition)

    def _scan(self) -> Iterator[tuple[str, tuple[float, int]]]:
        for player, entry in list(self.players.items()):
            if entry and entry.get("held"):
                first = entry["held"][0]
                yield player, (first["since"], first["partition"])
