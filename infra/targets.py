"""Prometheus file-based discovery: each process that serves metrics says where, itself.

The local Prometheus (``infra/monitoring.py``) scrapes one job per process kind from the files
under ``{home}/prometheus/targets/{job}/``.  A process writes its file when it starts serving
``/metrics`` and removes it when it stops, so Prometheus follows whatever ports and deployments
run in the home without its config being rewritten; a file left by a process that died makes
its target ``up == 0``, which is what PariVisionProcessDown is for.  Each target carries the
deployment's name as the ``deployment`` label (``instance`` is its ``host:port``)::

    path = register(settings, "stream", 9101)   # {home}/prometheus/targets/stream/default-9101.json
    ...
    unregister(path)

``parivision down`` clears the files of processes that are gone (:func:`prune`).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
from pathlib import Path

from infra.process import pid_alive
from parivision.settings import Settings

__all__ = ["PID_LABEL", "list_targets", "prune", "register", "targets_dir", "unregister"]

# Labels that start with "__" are dropped once Prometheus has relabelled a target: the pid says
# which process wrote a file without becoming part of every series.
PID_LABEL = "__parivision_pid"


def targets_dir(settings: Settings) -> Path:
    """Where the targets of every deployment in the home are written, one folder per job."""
    return settings.resolved_home() / "prometheus" / "targets"


def _address(host: str, port: int) -> str:
    return f"{'127.0.0.1' if host in ('0.0.0.0', '', '::') else host}:{port}"  # noqa: S104


def register(settings: Settings, job: str, port: int, host: str | None = None) -> Path:
    """Write this process's target (``job`` on ``port`` of ``host``, default the metrics host)
    for Prometheus; it is removed when the process exits normally.  Returns the file."""
    deployment = settings.deployment_name()
    path = targets_dir(settings) / job / f"{deployment}-{port}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    target = {
        "targets": [_address(host or settings.metrics_host, port)],
        "labels": {"deployment": deployment, PID_LABEL: str(os.getpid())},
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps([target]))
    tmp.replace(path)  # Prometheus never reads half a file
    atexit.register(unregister, path)
    return path


def unregister(path: Path) -> None:
    """Remove a target this process wrote (not one another process has written since)."""
    with contextlib.suppress(OSError, ValueError, KeyError, IndexError):
        (target,) = json.loads(path.read_text())
        if target["labels"][PID_LABEL] == str(os.getpid()):
            path.unlink()


def list_targets(settings: Settings) -> list[tuple[str, dict]]:
    """(job, target) of every file under :func:`targets_dir`, in name order."""
    found = []
    for path in sorted(targets_dir(settings).glob("*/*.json")):
        with contextlib.suppress(OSError, ValueError):
            found.extend((path.parent.name, target) for target in json.loads(path.read_text()))
    return found


def prune(settings: Settings) -> list[Path]:
    """Remove the target files whose process is gone; return them."""
    gone = []
    for path in sorted(targets_dir(settings).glob("*/*.json")):
        try:
            pids = [int(t["labels"][PID_LABEL]) for t in json.loads(path.read_text())]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not any(pid_alive(pid) for pid in pids):
            path.unlink(missing_ok=True)
            gone.append(path)
    return gone
