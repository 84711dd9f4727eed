"""The pipeline processes a command starts, and how they end with it.

``parivision demo`` starts ``serve``, ``stream``, ``sink`` and ``retrain-loop``, and
``stream --workers N`` starts N-1 more workers; each runs ``python -m parivision <command>``.
Nothing of them may outlive the command:

- **The parent is stopped** (SIGINT or SIGTERM): :func:`interruptible` turns both into
  ``KeyboardInterrupt``, also when the command started with SIGINT ignored (a shell's
  background job), and the command's ``finally`` calls :func:`stop_all`: SIGTERM to every child
  at once, one deadline for all, then SIGKILL to whatever is left and its process group.
- **The parent dies** (SIGKILL, a crash): each child asked the kernel at its start to send it
  SIGTERM when its parent goes (:func:`die_with_parent`, Linux's ``PR_SET_PDEATHSIG``).
- **Anything still left** under a home (a child that would not stop): ``parivision down``
  stops it (:func:`leftovers`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

# Set in a child's environment by the command that starts it: the parent's pid.
PARENT_ENV = "PARIVISION_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def child_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a child that must end with this process."""
    return {**env, PARENT_ENV: str(os.getpid())}


def die_with_parent() -> None:
    """In a child started by :func:`child_env`: get SIGTERM when the parent dies, and stop now
    if it already has (it died between starting this process and this call)."""
    parent = os.environ.pop(PARENT_ENV, None)  # not handed on to this process's own children
    if not parent:
        return
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the parent's stop still works
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != int(parent):
        raise SystemExit(f"the process that started this one ({parent}) is gone")


def _interrupt(signum: int, _frame) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


@contextlib.contextmanager
def _on_stop_signals(handler) -> Iterator[None]:
    """``handler`` for SIGINT and SIGTERM while inside; the handlers before are restored after."""
    before = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, previous in before.items():
            signal.signal(sig, previous)


def interruptible() -> contextlib.AbstractContextManager[None]:
    """SIGINT and SIGTERM raise ``KeyboardInterrupt`` while inside, so a command's ``finally``
    stops its children on either."""
    return _on_stop_signals(_interrupt)


def stop_all(processes: Iterable[subprocess.Popen], timeout: float = 30.0) -> None:
    """SIGTERM to every running process at once, wait up to ``timeout`` for all of them, then
    SIGKILL what is left, with its process group (a child started in a session of its own
    leads it).  Signals arriving meanwhile do not cut the stop short."""
    running = [p for p in processes if p.poll() is None]
    if not running:
        return
    with _on_stop_signals(signal.SIG_IGN):
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.0, deadline - time.monotonic()))
        for process in running:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    if os.getpgid(process.pid) == process.pid:
                        os.killpg(process.pid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                process.wait(10)


def leftovers(home: Path) -> list[int]:
    """Pipeline processes (``python -m parivision ...``) of ``home`` still running, other than
    this one: their environment names the home, as every child's does."""
    mark = b"\0" + f"PARIVISION_HOME={Path(home).resolve()}".encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            environ = b"\0" + (entry / "environ").read_bytes() + b"\0"
        except OSError:
            continue
        if b"-m" in cmdline and b"parivision" in cmdline and mark in environ:
            found.append(int(entry.name))
    return found
