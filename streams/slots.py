"""A worker slot per process on this machine, so a restarted worker has the ``transactional.id``
of the one that died: its start aborts what that one left open, at once rather than after the
transaction's timeout (:mod:`streams.transactions`).
"""

from __future__ import annotations

import fcntl
import socket
from pathlib import Path
from typing import IO

_slots: list[IO[bytes]] = []  # held open (and locked) for the life of the process


def claim_slot(home: Path, group: str) -> int:
    """The lowest worker slot of ``group`` on this machine no running process holds.

    A slot is an exclusive lock on a file under ``home``; the kernel drops it when its process
    dies, however it dies, so a worker restarted after a kill -9 gets the dead one's slot back.
    """
    folder = home / "run"
    folder.mkdir(parents=True, exist_ok=True)
    slot = 0
    while True:
        handle = open(folder / f"stream-{group}-slot-{slot}.lock", "ab")  # noqa: SIM115 - kept
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            slot += 1
            continue
        _slots.append(handle)
        return slot


def transactional_id(group: str, slot: int) -> str:
    return f"{group}-{socket.gethostname()}-{slot}"
