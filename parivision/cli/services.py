"""``up``, ``down``, ``status``: the local services."""

from __future__ import annotations

import contextlib
import os
import signal
from typing import Annotated

import typer

from parivision.cli.common import (
    app,
    console,
    fail,
    load_settings,
    start_services,
)

BrokersOption = Annotated[
    int | None,
    typer.Option(
        "--brokers",
        min=1,
        max=9,
        help="Run the local Kafka as a cluster of this many brokers on loopback (3 to try a "
        "broker failure); default: PARIVISION_KAFKA_BROKERS (1).",
    ),
]


@app.command("up")
def up_command(brokers: BrokersOption = None) -> None:
    """Start the local Kafka broker (or cluster, with --brokers), MongoDB server and MLflow
    store (idempotent), and Prometheus and Alertmanager when Debian's packages are installed.
    Other commands find a cluster by PARIVISION_KAFKA_BROKERS: `up` prints the line to export."""
    settings = load_settings()
    wanted = settings
    if brokers is not None:
        if settings.kafka_bootstrap:
            fail(
                "--brokers sizes the local Kafka, but PARIVISION_KAFKA_BOOTSTRAP points at "
                f"{settings.kafka_bootstrap}: unset it to run a local cluster"
            )
        wanted = settings.model_copy(update={"kafka_brokers": brokers})
    endpoints = start_services(wanted, monitoring=True)
    for name, address in (
        ("kafka", endpoints.kafka),
        ("mongodb", endpoints.mongodb),
        ("mlflow", endpoints.mlflow),
        *endpoints.monitoring.items(),
    ):
        typer.echo(f"{name:8} {address}")
    if wanted.kafka_brokers != settings.kafka_brokers:
        console.print("[dim]for the other commands to find this Kafka, in this shell:[/dim]")
        typer.echo(f"export PARIVISION_KAFKA_BROKERS={wanted.kafka_brokers}")


@app.command("down")
def down_command() -> None:
    """Stop the local services that `up` started (every Kafka node, whatever its cluster), and
    any pipeline process of this home still running (one a crashed `demo` left behind)."""
    from infra.process import terminate
    from infra.services import down
    from infra.targets import prune
    from parivision.cli.children import leftovers

    settings = load_settings()
    left = leftovers(settings.resolved_home())
    for pid in left:  # all told at once; each then waited for
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for pid in left:
        terminate(pid, timeout=35.0)  # the stream worker's own stop deadline, and a little
    stopped = [f"pipeline process {pid}" for pid in left] + down(settings)
    gone = prune(settings)  # what a process killed outright left for Prometheus
    if gone:
        typer.echo(f"cleared {len(gone)} metrics target(s) of processes that are gone")
    typer.echo("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@app.command("status")
def status_command() -> None:
    """Show which local services are running."""
    from infra.services import status

    settings = load_settings()
    services = status(settings, monitoring=True)
    for service in services:
        pid = f" pid {service.pid}" if service.pid else ""
        detail = f" ({service.detail})" if service.detail else ""
        typer.echo(
            f"{service.name:8} {service.mode:8} {service.state}{pid}  {service.address}{detail}"
        )
    _deployment(settings)
    if any(s.name.startswith("kafka") and s.state in ("running", "reachable") for s in services):
        _topic_copies(settings)


def _deployment(settings) -> None:
    """The names this deployment owns, whether it shares its registered model on purpose, and
    the metrics targets Prometheus finds in the home, by deployment."""
    from infra.targets import list_targets

    name = settings.deployment_name()
    typer.echo(
        f"deployment {name}: topics {settings.topic('*')}, database {settings.database()}, "
        f"groups {settings.stream_group()} and {settings.sink_consumer_group()}, "
        f"folder {settings.deployment_home()}"
    )
    model = settings.registered_model()
    if settings.shares_registered_model():
        typer.echo(
            f"  model {model}: SHARED on purpose (PARIVISION_MODEL_NAME): every deployment that "
            "names it serves the same champion, and a promotion in one swaps it in all"
        )
    else:
        typer.echo(f"  model {model}: this deployment's own")
    by_deployment: dict[str, list[str]] = {}
    for job, target in list_targets(settings):
        label = target.get("labels", {}).get("deployment", "?")
        by_deployment.setdefault(label, []).extend(f"{job}@{t}" for t in target["targets"])
    for label, targets in sorted(by_deployment.items()):
        mine = " (this one)" if label == name else ""
        typer.echo(f"  metrics of {label}{mine}: {', '.join(targets)}")


def _topic_copies(settings) -> None:
    """Each PariVision topic's partitions and copies, with a warning where one broker's loss
    would take its partitions offline."""
    from parivision.topics import KafkaUnavailable, describe

    try:
        topics = describe(settings)
    except KafkaUnavailable as error:
        typer.echo(f"topics: {error}")
        return
    if not topics:
        typer.echo("topics: none yet (the first `parivision stream` or `replay` makes them)")
        return
    typer.echo(f"topics on {topics[0].brokers} broker(s):")
    for topic in topics:
        copies = f"{topic.replicas} {'copy' if topic.replicas == 1 else 'copies'}"
        warning = f"  WARNING: {topic.warning}" if topic.warning else ""
        typer.echo(f"  {topic.name:48} {topic.partitions:>3} partitions  {copies}{warning}")
