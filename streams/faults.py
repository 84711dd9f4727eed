"""A crash at a named point of the worker, for the fault tests: ``PARIVISION_CRASH_AT=point:n``
kills the worker (SIGKILL, as the kernel's OOM killer would) the n-th time it reaches ``point``.

The window a test needs is a few milliseconds wide (records delivered, their batch not yet
committed); a kill from outside lands in it only by chance.  Unset, :func:`crash_point` costs
a dictionary lookup.
"""

from __future__ import annotations

import os
import signal

_reached: dict[str, int] = {}


def crash_point(point: str) -> None:
    wanted = os.environ.get("PARIVISION_CRASH_AT")
    if not wanted:
        return
    name, _, count = wanted.partition(":")
    if name != point:
        return
    _reached[point] = _reached.get(point, 0) + 1
    if _reached[point] == int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def crash_point_set() -> bool:
    return bool(os.environ.get("PARIVISION_CRASH_AT"))
