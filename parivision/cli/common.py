"""What every command shares: the Typer app, the console, common options and helpers."""

from __future__ import annotations

import logging
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

SinceOption = Annotated[
    int | None,
    typer.Option(
        help="Only shots on or after this game date (YYYYMMDD); 20181016 starts "
        "nba_shots.csv at the 2018-19 season, every team in game order."
    ),
]
UntilOption = Annotated[
    int | None, typer.Option(help="Only shots on or before this game date (YYYYMMDD).")
]


def check_dates(since: int | None, until: int | None) -> None:
    """Refuse a --since / --until that is not a YYYYMMDD date, or a since after the until."""
    for option, date in (("--since", since), ("--until", until)):
        if date is not None and not 19_000_101 <= date <= 21_001_231:
            fail(f"{option} {date} is not a YYYYMMDD date")
    if since is not None and until is not None and since > until:
        fail(f"--since {since} is after --until {until}")


CandidateOption = Annotated[
    list[str] | None,
    typer.Option(
        "--candidate",
        help="Train only this candidate (repeatable): logreg, random_forest, hist_gb, lightgbm.",
    ),
]


def load_settings() -> Settings:
    return Settings()


def fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=1)


def start_services(settings: Settings, monitoring: bool = False):
    """Start (or reuse) the local services the settings do not point elsewhere."""
    from infra.services import ServiceError, up

    try:
        return up(settings, console=console, monitoring=monitoring)
    except ServiceError as error:
        fail(str(error))


def serve_metrics(settings: Settings, job: str):
    """This process's metrics (see parivision.metrics), served on its port from settings."""
    from parivision.metrics import for_job

    metrics = for_job(job)
    expose(settings, metrics)
    return metrics


def expose(settings: Settings, metrics) -> None:
    from parivision.metrics import metrics_port

    try:
        port = metrics.serve(settings.metrics_host, metrics_port(settings, metrics.job))
    except OSError as error:
        fail(str(error))
    if port:
        console.print(f"{metrics.job} metrics on http://{settings.metrics_host}:{port}/metrics")
        announce(settings, metrics.job, port)


def announce(settings: Settings, job: str, port: int, host: str | None = None):
    """Tell the home's Prometheus where this process serves its metrics (``infra/targets.py``);
    the file goes when the process exits.  Returns the file, or None if it could not be written."""
    from infra.targets import register

    try:
        return register(settings, job, port, host)
    except OSError as error:  # metrics still served; only discovery is lost
        console.print(f"[yellow]warning:[/] Prometheus will not find the {job} metrics: {error}")
        return None


def log_to_console(level: str = "INFO") -> None:
    from rich.logging import RichHandler

    logging.basicConfig(level=level, format="%(message)s", handlers=[RichHandler(console=console)])
