"""The ``parivision`` command line: thin commands that parse options and call library code."""

from __future__ import annotations

import json
import logging
import math
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from parivision.settings import Settings

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="PariVision: live NBA shot scoring on Kafka, Faust, MLflow, River and MongoDB.",
)
console = Console(stderr=True)

DataOption = Annotated[
    str | None,
    typer.Option("--data", help="22-column CSV (.csv/.csv.gz), VirtualBets JSON, or an API URL."),
]


def _settings() -> Settings:
    return Settings()


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=1)


def _services(settings: Settings, monitoring: bool = False):
    """Start (or reuse) the local services the settings do not point elsewhere."""
    from infra.services import ServiceError, up

    try:
        return up(settings, console=console, monitoring=monitoring)
    except ServiceError as error:
        _fail(str(error))


def _serve_metrics(settings: Settings, job: str):
    """This process's metrics (see parivision.metrics), served on its port from settings."""
    from parivision.metrics import for_job

    metrics = for_job(job)
    _expose(settings, metrics)
    return metrics


def _expose(settings: Settings, metrics) -> None:
    from parivision.metrics import metrics_port

    try:
        port = metrics.serve(settings.metrics_host, metrics_port(settings, metrics.job))
    except OSError as error:
        _fail(str(error))
    if port:
        console.print(f"{metrics.job} metrics on http://{settings.metrics_host}:{port}/metrics")


def _logging(level: str = "INFO") -> None:
    from rich.logging import RichHandler

    logging.basicConfig(level=level, format="%(message)s", handlers=[RichHandler(console=console)])


@app.command("up")
def up_command() -> None:
    """Start the local Kafka broker, MongoDB server and MLflow store (idempotent), and
    Prometheus and Alertmanager when Debian's packages are installed."""
    endpoints = _services(_settings(), monitoring=True)
    for name, address in (
        ("kafka", endpoints.kafka),
        ("mongodb", endpoints.mongodb),
        ("mlflow", endpoints.mlflow),
        *endpoints.monitoring.items(),
    ):
        typer.echo(f"{name:8} {address}")


@app.command("down")
def down_command() -> None:
    """Stop the local services that `up` started."""
    from infra.services import down

    stopped = down(_settings())
    typer.echo("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@app.command("status")
def status_command() -> None:
    """Show which local services are running."""
    from infra.services import status

    for service in status(_settings(), monitoring=True):
        pid = f" pid {service.pid}" if service.pid else ""
        detail = f" ({service.detail})" if service.detail else ""
        typer.echo(
            f"{service.name:8} {service.mode:8} {service.state}{pid}  {service.address}{detail}"
        )


CandidateOption = Annotated[
    list[str] | None,
    typer.Option(
        "--candidate",
        help="Train only this candidate (repeatable): logreg, random_forest, hist_gb, lightgbm.",
    ),
]


@app.command("train")
def train_command(
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data",
            help="22-column CSV (.csv/.csv.gz), VirtualBets JSON, or an API URL; repeat it to "
            "train on several (a player's game found in two is taken from the first).",
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Use only the first N rows of each.")] = None,
    since: Annotated[
        int | None, typer.Option(help="Train only on shots on or after this game date (YYYYMMDD).")
    ] = None,
    champion: Annotated[
        bool | None,
        typer.Option(
            "--champion/--challenger",
            help="Force the champion alias (default: only when there is no champion yet).",
        ),
    ] = None,
    candidate: CandidateOption = None,
    validation_share: Annotated[
        float, typer.Option(help="The most recent share of shots (whole dates) that validates.")
    ] = 0.15,
    half_life_days: Annotated[
        float | None,
        typer.Option(
            help="A shot this many days older than the newest counts half (0: all the same; "
            "default PARIVISION_TRAIN_HALF_LIFE_DAYS)."
        ),
    ] = None,
) -> None:
    """Train the candidate models on past shots, log each to MLflow, register the best."""
    from rich.table import Table

    from models.data import training_frames
    from models.train import train_and_register

    if since is not None and not 19_000_101 <= since <= 21_001_231:
        _fail(f"--since {since} is not a YYYYMMDD date")
    settings = _settings()
    _services(settings)
    try:
        frame, name = training_frames(data, limit=limit, since=since)
        if frame.attrs.get("duplicate_rows"):
            typer.echo(
                f"{frame.attrs['duplicate_rows']:,} shots of player-games already in an earlier "
                "file were left out"
            )
        result = train_and_register(
            settings,
            frame,
            data_name=name,
            make_champion=champion,
            candidates=candidate,
            validation_share=validation_share,
            half_life_days=half_life_days,
            console=console,
        )
    except (ValueError, FileNotFoundError, ConnectionError) as error:
        _fail(str(error))
    window = result.window
    table = Table(
        title=f"validation {window.get('valid_from', '')}-{window.get('valid_to', '')} "
        f"({window['valid_rows']:,} shots; trained on {window['train_rows']:,})"
    )
    measured = ("log_loss", "roc_auc", "brier", "ece", "accuracy", "f1")
    for column in ("candidate", "log loss", "ROC-AUC", "Brier", "ECE", "accuracy", "F1", "fit s"):
        table.add_column(column, justify="left" if column == "candidate" else "right")
    table.add_row("base rate", f"{result.metrics['base_rate_log_loss']:.4f}", *["-"] * 6)
    for r in sorted(result.candidates, key=lambda r: r.metrics["log_loss"]):
        m = r.metrics
        table.add_row(
            f"[bold]{r.name}[/]" if r.name == result.candidate else r.name,
            *(f"{m[k]:.4f}" for k in measured),
            f"{r.fit_seconds:.1f}",
        )
    console.print(table)
    if result.recalibration is not None:
        kept = "recalibrated" if result.recalibration.calibration else "not recalibrated"
        typer.echo(f"{result.candidate} {kept}: {result.recalibration.reason}")
    role = "champion" if result.champion else "challenger (no alias)"
    typer.echo(
        f"registered {settings.model_name} v{result.version} ({result.candidate}) as {role}: "
        + json.dumps({k: round(v, 4) for k, v in result.metrics.items()})
    )


@app.command("evaluate")
def evaluate_command(
    data: Annotated[
        str, typer.Option("--data", help="Labelled shots: 22-column CSV or VirtualBets JSON.")
    ],
    model: Annotated[
        str | None,
        typer.Option(help="A version number, or an alias (default: the champion alias)."),
    ] = None,
    since: Annotated[
        int | None, typer.Option(help="Only shots on or after this game date (YYYYMMDD).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Read only the first N rows.")] = None,
    form_history: Annotated[
        list[str] | None,
        typer.Option(
            help="Shot files to start players' form from (repeatable; default "
            "PARIVISION_FORM_HISTORY; none: form starts from nothing, as for a new stream)."
        ),
    ] = None,
) -> None:
    """Replay labelled shots in time order through a registered model and measure it: by
    month, then by season, season type, shot zone and the shooter's earlier shots."""
    from rich.table import Table

    from models.data import training_frame, warm_form
    from models.evaluate import ModelUnavailableError, evaluate_registered

    if since is not None and not 19_000_101 <= since <= 21_001_231:
        _fail(f"--since {since} is not a YYYYMMDD date")
    settings = _settings()
    try:
        frame, name = training_frame(data, limit=limit)
        warm, history_shots = warm_form(form_history or settings.form_history)
        if warm:
            typer.echo(
                f"players' form starts from {history_shots:,} earlier shots "
                f"({len(warm):,} players)",
                err=True,
            )
        result = evaluate_registered(
            settings, frame, model=model, since=since, data=name, warm=warm
        )
    except (ModelUnavailableError, ValueError, FileNotFoundError, ConnectionError) as error:
        _fail(str(error))
    out = Console()
    table = Table(
        title=f"{result.model_name} v{result.model_version} ({result.candidate}) on {name}: "
        f"{result.first_date}-{result.last_date}"
    )
    for column in ("month", *_MEASURED_COLUMNS):
        table.add_column(column, justify="left" if column == "month" else "right")
    for month in result.months:
        table.add_row(month["month"], *_measured_cells(month))
    table.add_section()
    overall = {
        "rows": result.rows,
        "make_rate": result.make_rate,
        "mean_prediction": result.mean_prediction,
        **result.metrics,
    }
    table.add_row("[bold]all[/]", *_measured_cells(overall, bold=True))
    out.print(table)
    out.print(_segment_table(result.segments))
    for side, rows in (
        ("trained", result.rows_in_training_window),
        ("chosen", result.rows_in_validation_window),
    ):
        if rows:
            console.print(
                f"[yellow]note:[/] {rows:,} of these shots are dated within the window this "
                f"version was {side} on; if they are the same shots, the metrics are optimistic "
                "(`--since` a later date measures it on shots it has not seen)"
            )
    out.file.flush()
    typer.echo(json.dumps(result.as_dict()))


_MEASURED_COLUMNS = ("shots", "make rate", "mean P", "log loss", "ROC-AUC", "Brier", "ECE")

# How `parivision evaluate` names each kind of segment (models.evaluate.segments_of).
_SEGMENT_NAMES = {
    "season": "season",
    "season_type": "season type",
    "zone": "shot zone",
    "history": "earlier shots",
}


def _measured_cells(row: dict, bold: bool = False) -> list[str]:
    """Shots, make rate, mean P and the metrics of one evaluated row; "-" for an undefined one
    (ROC-AUC where every shot was made, or every shot missed)."""
    metrics = [row[k] for k in ("log_loss", "roc_auc", "brier", "ece")]
    cells = ["-" if math.isnan(v) else f"{v:.4f}" for v in metrics]
    if bold:
        cells = [f"[bold]{cell}[/]" for cell in cells]
    return [f"{row['rows']:,}", f"{row['make_rate']:.3f}", f"{row['mean_prediction']:.3f}", *cells]


def _segment_table(segments: dict[str, list[dict]]):
    """One table of every segment kind, a section each: the value, then its shots and metrics."""
    from rich.table import Table

    table = Table(title="by segment")
    table.add_column("segment")
    table.add_column("value", no_wrap=True)
    for column in _MEASURED_COLUMNS:
        table.add_column(column, justify="right")
    for kind, rows in segments.items():
        for index, row in enumerate(rows):
            label = _SEGMENT_NAMES.get(kind, kind) if index == 0 else ""
            table.add_row(label, row[kind] or "(none)", *_measured_cells(row))
        table.add_section()
    return table


def _print_decision(decision) -> None:
    """The decision as a table on stdout (metrics side by side), then the reason."""
    from rich.table import Table

    out = Console()
    champion, challenger = (decision.metrics.get(side, {}) for side in ("champion", "challenger"))
    was = f"v{decision.previous_version}" if decision.previous_version else "none"
    window = decision.window
    title = f"{decision.model}: champion {was}"
    if decision.challenger_version:
        title += f" vs challenger v{decision.challenger_version}"
    if window:
        title += f" on the {window.get('shots', 0):,} most recently labelled shots"
    table = Table(title=title)
    for column in ("metric", f"champion {was}", f"challenger v{decision.challenger_version}"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    table.add_column("difference", justify="right")
    labels = {
        "log_loss": "log loss",
        "roc_auc": "ROC-AUC",
        "brier": "Brier",
        "accuracy": "accuracy",
    }
    for name, label in labels.items():
        a, b = champion.get(name), challenger.get(name)
        table.add_row(
            label,
            "-" if a is None else f"{a:.4f}",
            "-" if b is None else f"{b:.4f}",
            "-" if a is None or b is None else f"{b - a:+.4f}",
        )
    if decision.metrics:
        out.print(table)
    colour = {"promoted": "green", "refused": "yellow", "rolled_back": "cyan"}[decision.event]
    now = f"v{decision.version}" if decision.version else "none"
    out.print(f"[bold {colour}]{decision.event.upper().replace('_', ' ')}[/]: {decision.reason}")
    if window:
        out.print(
            f"window: {window.get('shots', 0):,} labelled shots (asked for "
            f"{window.get('requested', 0):,}), log-loss margin {decision.margin:g}"
        )
    changed = decision.version != decision.previous_version
    out.print(f"champion of {decision.model} {'is now' if changed else 'stays'} {now}")
    for side, count in (window.get("dated_in_training_window") or {}).items():
        if count:
            console.print(
                f"[yellow]note:[/] {count:,} window shots are dated within the {side}'s "
                "training or validation window; its numbers there may be optimistic"
            )
    out.file.flush()


@app.command("promote")
def promote_command(
    version: Annotated[str, typer.Argument(help="The challenger: a version number (or vN).")],
    window: Annotated[
        int | None,
        typer.Option(
            help="Measure on the N most recently labelled shots in MongoDB "
            "[default: PARIVISION_PROMOTION_WINDOW, 5000]."
        ),
    ] = None,
    margin: Annotated[
        float | None,
        typer.Option(
            help="How much lower the challenger's log loss must be "
            "[default: PARIVISION_PROMOTION_MARGIN, 0.002]."
        ),
    ] = None,
) -> None:
    """Challenge the champion: promote VERSION only if it beats it on recent labelled shots."""
    from models.promotion import PromotionError, challenge
    from parivision.topics import ensure_topics

    if (window is not None and window < 1) or (margin is not None and margin < 0):
        _fail("--window must be at least 1 and --margin 0 or more")
    settings = _settings()
    _services(settings)
    ensure_topics(settings)
    try:
        decision = challenge(settings, version, window=window, margin=margin)
    except (PromotionError, LookupError, ValueError, ConnectionError) as error:
        _fail(str(error))
    _print_decision(decision)
    # Refused is an answer, not a failure: both exit 0; the JSON says which.
    typer.echo(json.dumps(decision.as_event()))


@app.command("rollback")
def rollback_command() -> None:
    """Give the champion alias back to the version the last promotion replaced."""
    from models.promotion import PromotionError, rollback
    from parivision.topics import ensure_topics

    settings = _settings()
    _services(settings)
    ensure_topics(settings)
    try:
        decision = rollback(settings)
    except (PromotionError, LookupError, ConnectionError) as error:
        _fail(str(error))
    _print_decision(decision)
    typer.echo(json.dumps(decision.as_event()))


@app.command("replay")
def replay_command(
    data: DataOption = None,
    synthetic: Annotated[bool, typer.Option(help="Use the synthetic live-game generator.")] = False,
    limit: Annotated[int | None, typer.Option(help="Stop after N shots.")] = None,
    rate: Annotated[float | None, typer.Option(help="Shots per second.")] = None,
    speed: Annotated[float | None, typer.Option(help="Times the game clock.")] = None,
    max_rate: Annotated[bool, typer.Option("--max", help="As fast as possible (default).")] = False,
    outcome_delay: Annotated[
        float | None,
        typer.Option(
            help="Send each outcome this many wall seconds after its attempt, whatever comes in "
            "between (a late-label drill). Default: PARIVISION_OUTCOME_DELAY_S of game time, "
            "before the player's next attempt."
        ),
    ] = None,
) -> None:
    """Produce shot attempts to shots.attempts and, a little later, outcomes to shots.outcomes."""
    from parivision.topics import ensure_topics
    from producers.pacing import make_pacer
    from producers.replay import replay
    from producers.sources import open_source

    if data and synthetic:
        _fail("give --data or --synthetic, not both")
    settings = _settings()
    _services(settings)
    ensure_topics(settings)
    try:
        pacer = make_pacer(rate=rate, speed=speed, max=max_rate)
        source = open_source(data, limit=limit)
    except (ValueError, FileNotFoundError, ConnectionError) as error:
        _fail(str(error))
    metrics = _serve_metrics(settings, "replay")
    stats = replay(
        settings,
        source,
        pacer=pacer,
        limit=limit,
        outcome_delay_s=outcome_delay,
        console=console,
        metrics=metrics,
    )
    for example in stats.bad_examples:
        console.print(f"[yellow]bad row[/] {example} (sent to {settings.topic('shots.dlq')})")
    typer.echo(json.dumps(stats.as_dict()))


@app.command("stream")
def stream_command(
    learner: Annotated[str, typer.Option(help="River online learner.")] = "logreg",
    loglevel: Annotated[str, typer.Option(help="Worker log level.")] = "info",
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes in the group (this one and N-1 children, each with its own "
            "metrics port from PARIVISION_STREAM_METRICS_PORT on); at most one per partition "
            "gets work.",
        ),
    ] = 1,
) -> None:
    """Run the Faust worker: validate, score with the champion, join outcomes, learn online."""
    from models.registry import NoChampionError, load_champion
    from parivision.topics import ensure_topics
    from streams.app import create_app, run_worker

    settings = _settings()
    _services(settings)
    ensure_topics(settings)
    try:
        champion = load_champion(settings)
    except (NoChampionError, ValueError) as error:
        _fail(str(error))
    console.print(f"scoring with {settings.model_name} v{champion.version}")
    if workers > settings.partitions:
        console.print(
            f"[yellow]{workers} workers for {settings.partitions} partitions: "
            f"{workers - settings.partitions} will have nothing to do[/]"
        )
    children = _start_workers(settings, workers - 1, learner=learner, loglevel=loglevel)
    sys.argv = [sys.argv[0]]  # the Faust worker reads argv; it has none of its own here
    worker_app = create_app(settings, champion, learner=learner)
    _expose(settings, worker_app.metrics)
    try:
        run_worker(worker_app, loglevel=loglevel)
    finally:
        _stop_workers(children)


def _start_workers(settings: Settings, n: int, *, learner: str, loglevel: str) -> list:
    """``n`` more stream workers in this one's group, as child processes logging to files."""
    import os
    import subprocess

    children = []
    logs = settings.resolved_home() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for i in range(1, n + 1):
        # The same settings; local services this process started are found running and reused.
        env = dict(os.environ)
        env["PARIVISION_HOME"] = str(settings.resolved_home())
        if settings.stream_metrics_port:
            env["PARIVISION_STREAM_METRICS_PORT"] = str(settings.stream_metrics_port + i)
        log_path = logs / f"stream-worker-{i}.log"
        with open(log_path, "ab") as log:
            children.append(
                subprocess.Popen(
                    [sys.executable, "-m", "parivision", "stream"]
                    + ["--learner", learner, "--loglevel", loglevel],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        console.print(f"worker {i + 1} started: pid {children[-1].pid}, log {log_path}")
    return children


def _stop_workers(children: list) -> None:
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(30)
        except Exception:  # noqa: BLE001 - it did not stop in time
            child.kill()


@app.command("sink")
def sink_command() -> None:
    """Run the MongoDB sink: shots_raw, shots and predictions, idempotent on the shot id."""
    from consumers.mongo_sink import MongoSink, connect
    from consumers.runner import run_sink
    from parivision.topics import ensure_topics

    settings = _settings()
    _logging()
    _services(settings)
    ensure_topics(settings)
    sink = MongoSink(
        connect(settings.mongodb()),
        settings.mongodb_database,
        topic_prefix=settings.topic_prefix,
        metrics=_serve_metrics(settings, "sink"),
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    written = run_sink(
        settings, sink, stop=stop, describe_target=f"MongoDB ({settings.mongodb_database})"
    )
    console.print(f"sink stopped after writing {written} records")


@app.command("serve")
def serve_command(
    host: Annotated[
        str | None, typer.Option(help="Interface [default: PARIVISION_API_HOST].")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port [default: PARIVISION_API_PORT].")] = None,
) -> None:
    """Run the live API: REST predictions, history, the WebSocket feed and the court page."""
    from parivision.serve import run_api
    from parivision.topics import ensure_topics

    settings = _settings()
    _logging("WARNING")
    _services(settings)
    ensure_topics(settings)
    address = f"http://{host or settings.api_host}:{port or settings.api_port}"
    console.print(f"live API and court page at [bold]{address}/[/] (OpenAPI at {address}/docs)")
    run_api(settings, host=host, port=port)


@app.command("virtualbets-api")
def virtualbets_api_command(
    data: Annotated[Path, typer.Option("--data", help="22-column CSV (.csv/.csv.gz) to serve.")],
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve a CSV as the VirtualBets HTTP API (GET /getdata/{n}, GET /getdata/reset)."""
    from producers.virtualbets_api import CURSOR_FILE_NAME, serve_api

    if not data.exists():
        _fail(f"no file at {data}")
    # The cursor survives a restart, under the project home like every other piece of state.
    state = _settings().resolved_home() / CURSOR_FILE_NAME
    serve_api(data, host=host, port=port, state_file=state)


@app.command("alerts-webhook")
def alerts_webhook_command(
    host: Annotated[
        str, typer.Option(help="Interface to bind (0.0.0.0 to receive from a container).")
    ] = "127.0.0.1",
    port: Annotated[
        int | None, typer.Option(help="Port [default: PARIVISION_ALERTS_WEBHOOK_PORT, 9105].")
    ] = None,
) -> None:
    """Receive Alertmanager's alerts at POST /alerts: log each, append it to alerts.jsonl."""
    from consumers.alerts_webhook import make_server, serve

    settings = _settings()
    _logging()
    try:
        server = make_server(settings, host=host, port=port)
    except OSError as error:
        _fail(str(error))
    bound_host, bound_port = server.server_address[:2]
    console.print(
        f"receiving alerts at http://{bound_host}:{bound_port}/alerts, "
        f"appending them to {settings.resolved_home() / 'alerts.jsonl'}"
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    serve(server, stop)


@app.command("demo")
def demo_command(
    data: DataOption = None,
    limit: Annotated[int | None, typer.Option(help="Replay N shots (default 5,000).")] = None,
    until_done: Annotated[
        bool,
        typer.Option("--until-done", help="Stop once every produced shot is scored and stored."),
    ] = False,
    rate: Annotated[float | None, typer.Option(help="Shots per second (default: max).")] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the pipeline to drain.")
    ] = 600,
) -> None:
    """Everything at once: services, a champion if none, stream, sink, and a replay."""
    from parivision.demo import DemoError, run_demo

    settings = _settings()
    _logging("WARNING")
    # Prometheus and Alertmanager too, when installed: the demo's processes are scraped.
    endpoints = _services(settings, monitoring=True)
    try:
        summary = run_demo(
            settings,
            endpoints,
            data=data,
            limit=limit or 5000,
            until_done=until_done,
            rate=rate,
            timeout=timeout,
            console=console,
        )
    except DemoError as error:
        _fail(str(error))
    typer.echo(json.dumps(summary))
    if until_done and not summary.get("complete"):
        raise typer.Exit(code=1)


def _retrain_loop(settings: Settings, **overrides):
    from pymongo import MongoClient

    from consumers.retrain_trigger import loop_from_settings

    db = MongoClient(settings.mongodb(), serverSelectionTimeoutMS=10_000)[settings.mongodb_database]
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

    from consumers.retrain_trigger import request_retrain
    from parivision.topics import ensure_topics

    settings = _settings()
    if request:
        path = request_retrain(settings, reason or "manual")
        typer.echo(json.dumps({"requested": reason or "manual", "file": str(path)}))
        return
    _services(settings)
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
        _expose(settings, loop.metrics)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        if reason:
            loop.step(manual=reason)
        retrains = loop.run(stop, poll or settings.retrain_poll_s)
    except PyMongoError as error:
        _fail(
            f"cannot read MongoDB ({settings.mongodb_database!r}): {error}; start it with "
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
    shots against the champion's training reference and the champion's quality on them (an
    HTML report under the home's reports/), and ADWIN on the champion's errors."""
    from mlflow.exceptions import MlflowException
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError
    from rich.table import Table

    from consumers.retrain_trigger import drift_status

    settings = _settings()
    _services(settings)
    window = window or settings.retrain_window
    try:
        db = MongoClient(settings.mongodb(), serverSelectionTimeoutMS=10_000)[
            settings.mongodb_database
        ]
        status = drift_status(settings, db, window, drift_share=drift_share)
    except PyMongoError as error:
        _fail(f"cannot read MongoDB ({settings.mongodb_database!r}): {error}")
    except (MlflowException, ValueError) as error:
        _fail(f"cannot check drift: {error}")
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


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
