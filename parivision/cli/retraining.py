"""``retrain-loop`` and ``drift``: retraining on new labels, a schedule or drift."""

from __future__ import annotations

import json
import os
import signal
import threading
from typing import Annotated

import typer
from rich.console import Console

from parivision.cli.common import (
    CandidateOption,
    app,
    console,
    expose,
    fail,
    load_settings,
    start_services,
)
from parivision.settings import Settings


def _retrain_loop(settings: Settings, **overrides):
    from pymongo import MongoClient

    from consumers.retrain_trigger import loop_from_settings

    db = MongoClient(settings.mongodb(), serverSelectionTimeoutMS=10_000)[settings.database()]
    overrides["candidates"] = overrides.pop("candidate")
    return loop_from_settings(settings, db, console=console, **overrides)


@app.command("retrain-loop")
def retrain_loop_command(
    data: Annotated[
        str | None, typer.Option("--data", help="Also train on this CSV (before the stored shots).")
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Check once (and retrain if due), then exit.")
    ] = False,
    reason: Annotated[
        str | None, typer.Option(help="Retrain now, for this reason (e.g. manual).")
    ] = None,
    request: Annotated[
        bool, typer.Option("--request", help="Ask the running loop to retrain at its next poll.")
    ] = False,
    min_new: Annotated[int | None, typer.Option(help="Retrain after N new labelled shots.")] = None,
    every: Annotated[float | None, typer.Option(help="Retrain every S seconds.")] = None,
    drift_share: Annotated[
        float | None,
        typer.Option(help="Evidently's dataset drift (a data_drift retrain) at this share."),
    ] = None,
    window: Annotated[int | None, typer.Option(help="Recent shots per drift check.")] = None,
    holdout: Annotated[
        int | None, typer.Option(help="Most recent labelled shots kept out to challenge on.")
    ] = None,
    poll: Annotated[float | None, typer.Option(help="Seconds between checks.")] = None,
    candidate: CandidateOption = None,
) -> None:
    """Retrain a challenger and challenge the champion on new labels, a schedule, or drift."""
    from pymongo.errors import PyMongoError

    from consumers.retrain_request import request_retrain
    from parivision.topics import ensure_topics

    settings = load_settings()
    if request:
        path = request_retrain(settings, reason or "manual")
        typer.echo(json.dumps({"requested": reason or "manual", "file": str(path)}))
        return
    start_services(settings)
    ensure_topics(settings)
    try:
        loop = _retrain_loop(
            settings,
            min_new=min_new,
            every=every,
            drift_share=drift_share,
            window=window,
            holdout=holdout,
            data=data,
            candidate=candidate,
        )
        if once:
            event = loop.step(manual=reason)
            event = {k: v for k, v in (event or {}).items() if k != "_id"}
            typer.echo(json.dumps(event or {"retrained": False}, default=str))
            return
        expose(settings, loop.metrics)
        # Drift reports and training are background work: the stream, the sink and the store
        # come first for the CPU (a retrain still runs, only slower on a busy machine).
        os.nice(settings.retrain_nice)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        if reason:
            loop.step(manual=reason)
        retrains = loop.run(stop, poll or settings.retrain_poll_s)
    except PyMongoError as error:
        fail(
            f"cannot read MongoDB ({settings.database()!r}): {error}; start it with "
            "`parivision up` or set PARIVISION_MONGODB_URI"
        )
    typer.echo(json.dumps({"retrains": retrains}))


@app.command("drift")
def drift_command(
    window: Annotated[int | None, typer.Option(help="Recent shots to check.")] = None,
    drift_share: Annotated[
        float | None, typer.Option(help="Evidently's dataset drift at this share of features.")
    ] = None,
) -> None:
    """Check drift now, as the retrain loop does: Evidently's data drift of the newest stored
    shots against the champion's training reference and the champion's quality on them (and
    its HTML report under the home's reports/), and ADWIN on the champion's errors."""
    from pathlib import Path

    from mlflow.exceptions import MlflowException
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError
    from rich.table import Table

    from consumers.retrain_drift import drift_status
    from models.drift_checks import draw_report

    settings = load_settings()
    start_services(settings)
    window = window or settings.retrain_window
    try:
        db = MongoClient(settings.mongodb(), serverSelectionTimeoutMS=10_000)[settings.database()]
        status = drift_status(settings, db, window, drift_share=drift_share)
        if status["report"]:
            draw_report(Path(status["report"]))  # asked for: the loop leaves its checks undrawn
    except PyMongoError as error:
        fail(f"cannot read MongoDB ({settings.database()!r}): {error}")
    except (MlflowException, ValueError) as error:
        fail(f"cannot check drift: {error}")
    out = Console()
    adwin = status["adwin"]
    mean = adwin["mean_error"]
    out.print(
        f"ADWIN on |outcome - p_champion|: {adwin['seen']:,} labels, window {adwin['window']:,}, "
        f"mean error {'n/a' if mean is None else f'{mean:.4f}'}, {adwin['detections']} drift(s)"
    )
    data = status["data"]
    if data is None:
        out.print(
            f"data drift: fewer than {window:,} stored shots (or, for a champion without a "
            f"training sample, two windows of them); nothing to check yet"
        )
    else:
        verdict = "[bold red]detected[/]" if data["dataset_drift"] else "not detected"
        table = Table(
            title=f"newest {data['recent_rows']:,} shots against "
            f"{data['reference_description']}: drift share {data['drift_share']:.2f}, "
            f"dataset drift {verdict} (at {data['drift_threshold']:g})"
        )
        for column in ("feature", "method", "score", "threshold", "drifted"):
            table.add_column(column, justify="left" if column in ("feature", "method") else "right")
        for name, f in data["features"].items():
            table.add_row(
                name,
                f["method"],
                "-" if f["score"] is None else f"{f['score']:.4g}",
                f"{f['threshold']:g}",
                "[bold red]yes[/]" if f["drifted"] else "no",
            )
        out.print(table)
        quality = ", ".join(f"{k} {v:.4f}" for k, v in data["quality"].items() if v is not None)
        out.print(
            f"champion quality on {data['labelled_rows']:,} labelled shots: "
            + (quality or "not measured (too few labels)")
        )
        out.print(f"report: {status['report']}")
    out.file.flush()
    typer.echo(json.dumps(status))
