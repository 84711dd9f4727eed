"""``up``, ``down``, ``status``: the local services."""

from __future__ import annotations

import typer

from parivision.cli.common import (
    app,
    load_settings,
    start_services,
)


@app.command("up")
def up_command() -> None:
    """Start the local Kafka broker, MongoDB server and MLflow store (idempotent), and
    Prometheus and Alertmanager when Debian's packages are installed."""
    endpoints = start_services(load_settings(), monitoring=True)
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

    stopped = down(load_settings())
    typer.echo("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@app.command("status")
def status_command() -> None:
    """Show which local services are running."""
    from infra.services import status

    for service in status(load_settings(), monitoring=True):
        pid = f" pid {service.pid}" if service.pid else ""
        detail = f" ({service.detail})" if service.detail else ""
        typer.echo(
            f"{service.name:8} {service.mode:8} {service.state}{pid}  {service.address}{detail}"
        )
