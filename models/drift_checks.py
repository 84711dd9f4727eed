"""Each drift check kept under the home's ``reports/`` folder: its summary and the frames it was
computed from, and Evidently's HTML report drawn from them when someone asks for it.

A check costs the retrain loop milliseconds (:func:`models.drift_report.check_drift`); drawing
Evidently's report of it costs seconds, and most are never read.  So :func:`save_check` keeps
what the report needs, and :func:`draw_report` draws it on request -- ``GET /reports/drift``
(:func:`latest_report`), ``parivision drift``, and a retrain, which cites its check's report --
and keeps it beside them.  For the check named ``drift-<UTC time>Z``:

- ``drift-<UTC time>Z.json``: its summary (as ``latest.json`` has it), how many labelled shots
  its quality part needs, and the name of its reference's file;
- ``drift-<UTC time>Z.recent.parquet``: the recent window (features, outcome, probability);
- ``reference-<digest>.parquet``: the reference's features, one file for all the checks
  against the same reference (a champion's training sample, until the next champion);
- ``drift-<UTC time>Z.html``: the report once drawn; the summary's ``report`` names it.

``latest.json`` is the last check's summary and ``latest.html`` its report once drawn.  The
last ``keep`` checks are kept, and the references they were computed against.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.drift_report import (
    LATEST_HTML,
    LATEST_JSON,
    DriftInputs,
    DriftSummary,
    check_name,
    latest_summary,
    prune_checks,
    write_atomic,
)
from models.drift_stats import FeatureScore

RECENT_SUFFIX = ".recent.parquet"
# A reference written this recently may belong to a check another process is saving.
REFERENCE_GRACE_S = 600.0
# One drawing at a time in a process: a second request for the same report waits for the
# first and reads what it drew.
_DRAWING = threading.Lock()


def save_check(folder: Path, summary: DriftSummary, inputs: DriftInputs, *, keep: int = 20) -> Path:
    """Keep a check undrawn in ``folder``: its summary (also as ``latest.json``), its recent
    window and its reference; delete the oldest checks beyond ``keep``.  Returns the path its
    report will be drawn at (also set as ``summary.report``)."""
    folder.mkdir(parents=True, exist_ok=True)
    name = check_name(summary.at)
    path = folder / f"{name}.html"
    summary.report = str(path)
    reference = _save_reference(folder, inputs.reference)
    _write_parquet(inputs.recent, folder / f"{name}{RECENT_SUFFIX}")
    latest = summary.as_dict()
    saved = {"summary": latest, "min_labelled": inputs.min_labelled, "reference": reference}
    write_atomic(folder / f"{name}.json", json.dumps(saved))
    # The previous check's report is no longer the latest; this one is not drawn yet.
    (folder / LATEST_HTML).unlink(missing_ok=True)
    write_atomic(folder / LATEST_JSON, json.dumps(latest, indent=1))
    prune_checks(folder, keep)
    _prune_references(folder)
    return path


def _save_reference(folder: Path, frame: pd.DataFrame) -> str:
    """The reference's file, written unless a kept check already wrote the same one."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(json.dumps(list(frame.columns)).encode())
    digest.update(np.ascontiguousarray(frame.to_numpy(np.float64)).tobytes())
    name = f"reference-{digest.hexdigest()}.parquet"
    path = folder / name
    if path.is_file():
        os.utime(path)  # in use again: not pruned by a process saving another check
    else:
        _write_parquet(frame, path)
    return name


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    frame.to_parquet(partial, index=False)
    os.replace(partial, path)


def _prune_references(folder: Path) -> None:
    """Delete the references no kept check names (unless written moments ago)."""
    used = set()
    for path in folder.glob("drift-*.json"):
        try:
            used.add(json.loads(path.read_text(encoding="utf-8"))["reference"])
        except (OSError, ValueError, KeyError):
            continue  # pruned meanwhile, or not a check's file
    recent = time.time() - REFERENCE_GRACE_S
    for path in folder.glob("reference-*.parquet"):
        try:
            if path.name not in used and path.stat().st_mtime < recent:
                path.unlink()
        except FileNotFoundError:
            continue


def draw_report(report: Path) -> Path:
    """Evidently's HTML report of the check whose summary names ``report``: drawn from the
    check's files, unless it already is, and kept there (and as ``latest.html`` for the last
    check).  Returns ``report``.

    Raises:
        FileNotFoundError: the check's files are gone (it is older than the last ``keep``).
        ValueError: Evidently could not test the saved frames.
    """
    from models.drift_evidently import render_html

    if report.is_file():
        return report
    with _DRAWING:
        if report.is_file():
            return report
        folder, name = report.parent, report.name.removesuffix(".html")
        saved = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
        inputs = DriftInputs(
            recent=pd.read_parquet(folder / f"{name}{RECENT_SUFFIX}"),
            reference=pd.read_parquet(folder / saved["reference"]),
            min_labelled=int(saved["min_labelled"]),
        )
        html = render_html(summary_from_dict(saved["summary"]), inputs)
        write_atomic(report, html)
        latest = latest_summary(folder)
        if latest is not None and Path(latest.get("report") or "").name == report.name:
            write_atomic(folder / LATEST_HTML, html)
    return report


def latest_report(folder: Path) -> Path | None:
    """The last check's HTML report in ``folder``, drawn if it is not yet; None when no check
    has run (or its files are gone)."""
    latest = latest_summary(folder)
    if latest is None or not latest.get("report"):
        return None
    try:
        return draw_report(folder / Path(latest["report"]).name)
    except FileNotFoundError:
        return None


def summary_from_dict(saved: dict[str, Any]) -> DriftSummary:
    """A :class:`DriftSummary` back from its ``as_dict`` (a score JSON could not hold, NaN)."""

    def number(value: float | None) -> float:
        return math.nan if value is None else float(value)

    known = {f.name for f in fields(DriftSummary)}
    values = {key: value for key, value in saved.items() if key in known}
    values["features"] = {
        name: FeatureScore(**{**score, "score": number(score["score"])})
        for name, score in saved["features"].items()
    }
    values["quality"] = {name: number(value) for name, value in saved["quality"].items()}
    return DriftSummary(**values)
