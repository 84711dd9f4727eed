"""A player's entry in the ``players`` table, and the key each shot is known by there.

Everything :class:`streams.flow.ShotFlow` keeps about a player is one entry, so that each change is
one changelog record (separate tables for held attempts, pending predictions and early outcomes,
each with its own changelog, came back disagreeing and lost outcomes).  The entry, keyed by player
id and written under the partition of the player's events:

- ``state``: the player's form state (:mod:`models.form`);
- ``open``: event keys scored whose outcome is due before the next attempt may go;
- ``held``: attempts held behind them, in order (``shot``, ``key``, ``partition``, ``since``);
- ``pending``: :func:`event_key` -> the scored record kept until its outcome;
- ``done``: :func:`event_key` -> ``[time, partition]`` of shots joined in the last
  ``early_ttl_s``, so a copy Kafka redelivers after a rebalance (an attempt or an outcome) is
  known for a duplicate, not scored again or left waiting for an outcome that was already used;
- ``early``: :func:`event_key` -> ``[made, since, partition]``, an outcome that came before its
  attempt was scored.  One that no attempt claims within ``early_ttl_s`` (its attempt never
  came) is dropped, and counted, by :meth:`streams.flow.ShotFlow.expire`.

A second table, ``seen`` (:func:`event_key` -> partition), takes the ``done`` marks older than
``early_ttl_s``: a copy redelivered after any delay is still a duplicate and never counted twice
in a player's form.  A mark is written there one sweep before it leaves the player's entry, so
a crash between the two writes leaves it in both, never in neither.  ``seen`` grows by one
small entry per shot and is never scanned.
"""

from __future__ import annotations

from typing import Any

from models.form import new_state


def event_key(record: dict[str, Any]) -> str:
    """What the tables key a shot by: its id and the replay that sent it.

    A shot replayed again (another ``replay_id``) is a new event to score and join; a copy
    Kafka redelivers (the same replay) is a duplicate.
    """
    return f"{record['shot_id']}@{record.get('replay_id', '')}"


def key_text(key: bytes | None) -> str | None:
    return None if key is None else key.decode("latin-1")


def key_bytes(key: str | None) -> bytes | None:
    return None if key is None else key.encode("latin-1")


def new_entry(state: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "state": state or new_state(),
        "open": [],
        "held": [],
        "pending": {},
        "done": {},
        "early": {},
    }
