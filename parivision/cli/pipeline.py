"""``replay``, ``stream``, ``sink``, ``serve`` and the rest of the live pipeline, and ``demo``,
which runs it all at once.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from parivision.cli.children import child_env, interruptible, stop_all
from parivision.cli.common import (
    DataOption,
    SinceOption,
    UntilOption,
    app,
    check_dates,
    console,
    expose,
    fail,
    load_settings,
    log_to_console,
    serve_metrics,
    start_services,
)
from parivision.heap import freeze_startup_objects
from parivision.settings import Settings


@app.command("replay")
def replay_command(
    data: DataOption = None,
    synthetic: Annotated[bool, typer.Option(help="Use the synthetic live-game generator.")] = False,
    limit: Annotated[int | None, typer.Option(help="Stop after N shots.")] = None,
    since: SinceOption = None,
    until: UntilOption = None,
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
    from parivision.sources import open_source
    from parivision.topics import ensure_topics
    from producers.pacing import make_pacer
    from producers.replay import replay

    if data and synthetic:
        fail("give --data or --synthetic, not both")
    check_dates(since, until)
    if (since or until) and not data:
        fail("--since and --until choose shots of a --data file")
    settings = load_settings()
    start_services(settings)
    ensure_topics(settings)
    try:
        pacer = make_pacer(rate=rate, speed=speed, max=max_rate)
        source = open_source(data, limit=limit, since=since, until=until)
    except (ValueError, FileNotFoundError, ConnectionError) as error:
        fail(str(error))
    metrics = serve_metrics(settings, "replay")
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
    learner: Annotated[
        str | None,
        typer.Option(
            help="The online learner whose probability is p_online (it runs first, beside "
            "the others of PARIVISION_ONLINE_LEARNERS) [default: the first of those]."
        ),
    ] = None,
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
    from streams.app import create_app
    from streams.worker import run_worker

    settings = load_settings()
    start_services(settings)
    ensure_topics(settings)
    try:
        champion = load_champion(settings)
    except (NoChampionError, ValueError) as error:
        fail(str(error))
    console.print(f"scoring with {settings.registered_model()} v{champion.version}")
    if workers > settings.partitions:
        console.print(
            f"[yellow]{workers} workers for {settings.partitions} partitions: "
            f"{workers - settings.partitions} will have nothing to do[/]"
        )
    children = _start_workers(settings, workers - 1, learner=learner, loglevel=loglevel)
    sys.argv = [sys.argv[0]]  # the Faust worker reads argv; it has none of its own here
    worker_app = create_app(settings, champion, learner=learner)
    expose(settings, worker_app.metrics)
    try:
        run_worker(worker_app, loglevel=loglevel)
    finally:
        _stop_workers(children)


def _start_workers(settings: Settings, n: int, *, learner: str | None, loglevel: str) -> list:
    """``n`` more stream workers in this one's group, as child processes logging to files."""
    import os
    import subprocess

    children = []
    logs = settings.deployment_dir("logs")
    logs.mkdir(parents=True, exist_ok=True)
    for i in range(1, n + 1):
        # The same settings; local services this process started are found running and reused.
        env = child_env(dict(os.environ))
        env["PARIVISION_HOME"] = str(settings.resolved_home())
        if settings.stream_metrics_port:
            env["PARIVISION_STREAM_METRICS_PORT"] = str(settings.stream_metrics_port + i)
        log_path = logs / f"stream-worker-{i}.log"
        with open(log_path, "ab") as log:
            children.append(
                subprocess.Popen(
                    [sys.executable, "-m", "parivision", "stream"]
                    + (["--learner", learner] if learner else [])
                    + ["--loglevel", loglevel],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        console.print(f"worker {i + 1} started: pid {children[-1].pid}, log {log_path}")
    return children


def _stop_workers(children: list) -> None:
    # Within the worker's own stop deadline (streams.worker.STOP_TIMEOUT_S), and a little more.
    stop_all(children, timeout=35.0)


@app.command("sink")
def sink_command() -> None:
    """Run the MongoDB sink: shots_raw, shots and predictions, idempotent on the shot id."""
    from consumers.mongo_sink import MongoSink, connect
    from consumers.runner import run_sink
    from parivision.topics import ensure_topics

    settings = load_settings()
    log_to_console()
    start_services(settings)
    ensure_topics(settings)
    sink = MongoSink(
        connect(settings.mongodb()),
        settings.database(),
        topic_prefix=settings.prefix(),
        metrics=serve_metrics(settings, "sink"),
        label_wait_s=settings.sink_label_wait_s,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    freeze_startup_objects()
    written = run_sink(
        settings, sink, stop=stop, describe_target=f"MongoDB ({settings.database()})"
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
    from parivision.cli.serve import run_api
    from parivision.topics import ensure_topics

    settings = load_settings()
    log_to_console("WARNING")
    start_services(settings)
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
        fail(f"no file at {data}")
    # The cursor survives a restart, under the project home like every other piece of state.
    state = load_settings().resolved_home() / CURSOR_FILE_NAME
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

    settings = load_settings()
    log_to_console()
    try:
        server = make_server(settings, host=host, port=port)
    except OSError as error:
        fail(str(error))
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
    since: SinceOption = None,
    until: UntilOption = None,
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
    from parivision.cli.demo import run_demo
    from parivision.cli.processes import DemoError

    check_dates(since, until)
    if (since or until) and not data:
        fail("--since and --until choose shots of a --data file")
    settings = load_settings()
    log_to_console("WARNING")
    # Prometheus and Alertmanager too, when installed: the demo's processes are scraped.
    endpoints = start_services(settings, monitoring=True)
    try:
        with interruptible():  # SIGTERM too, and SIGINT even if ignored at start
            summary = run_demo(
                settings,
                endpoints,
                data=data,
                limit=limit or 5000,
                since=since,
                until=until,
                until_done=until_done,
                rate=rate,
                timeout=timeout,
                console=console,
            )
    except DemoError as error:
        fail(str(error))
    typer.echo(json.dumps(summary))
    if until_done and not summary.get("complete"):
        raise typer.Exit(code=1)
