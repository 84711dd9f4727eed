"""``parivision serve``: the live API with everything a deployment mounts on it.

The app itself lives in :mod:`consumers.api`; this face adds the original VirtualBets routes
(``/getdata/{n}``, ``/reset``) from the producers when ``PARIVISION_VIRTUALBETS_CSV`` names a
file, and runs it all with uvicorn.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, HTTPException

from consumers.api import create_app
from parivision.cli.common import announce
from parivision.heap import freeze_startup_objects
from parivision.metrics import API
from parivision.settings import Settings


def _no_virtualbets_csv() -> APIRouter:
    api = APIRouter(tags=["original API"])

    @api.get("/getdata/{n}", include_in_schema=False)
    @api.get("/getdata/{n}/", include_in_schema=False)
    @api.get("/reset", include_in_schema=False)
    def missing(n: str = "") -> None:
        raise HTTPException(
            404, detail="no CSV to serve: set PARIVISION_VIRTUALBETS_CSV to a 22-column file"
        )

    return api


def build_app(settings: Settings) -> FastAPI:
    """The API app, with the original VirtualBets routes when a CSV is configured."""
    if settings.virtualbets_csv is None:
        extra = _no_virtualbets_csv()
    else:
        from producers.virtualbets_api import CURSOR_FILE_NAME, original_api_router

        extra = original_api_router(
            settings.virtualbets_csv, settings.resolved_home() / CURSOR_FILE_NAME
        )
    return create_app(settings, extra_routers=[extra])


def _unregister_at_shutdown(app: FastAPI, target) -> None:
    """Remove the API's Prometheus target when the app shuts down.  Exit handlers are not enough
    here: uvicorn stops on SIGTERM, then raises the signal again with its default action, which
    ends the process without running them."""
    from contextlib import asynccontextmanager

    from infra.targets import unregister

    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with inner(app) as state:
            try:
                yield state
            finally:
                unregister(target)

    app.router.lifespan_context = lifespan


def run_api(settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
    """Serve until interrupted (blocking)."""
    import os

    import uvicorn

    # A registry that is down should be reported within seconds, not after MLflow's default
    # retries (minutes): /health and the champion's reload both wait on it.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    app = build_app(settings)
    target = announce(settings, API, port or settings.api_port, host or settings.api_host)
    if target is not None:
        _unregister_at_shutdown(app, target)
    freeze_startup_objects()
    uvicorn.run(
        app,
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
