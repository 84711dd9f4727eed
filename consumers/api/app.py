"""The live API's FastAPI app: REST predictions, history, models, health, admin, the WebSocket
feed and the court page (see ``docs/api.md``).

:func:`create_app` only wires things; connecting happens when the app starts (its lifespan):
the champion is loaded, the live feed starts following ``shots.scored``.  Routes that read
MongoDB or the registry answer 503 naming the service when it cannot be reached, never 500.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request, WebSocket
from fastapi.responses import FileResponse, Response
from mlflow.exceptions import MlflowException
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from consumers.api import admin, health, predict, queries, registry_routes, reports, whatif
from consumers.api.history import PlayerHistories
from consumers.api.live_feed import Feed, on_loop
from consumers.api.live_hub import Hub, recent
from consumers.api.live_socket import serve_client
from consumers.api.metrics import RequestMetrics, api_metrics
from consumers.api.metrics import router as api_metrics_router
from consumers.api.names import PlayerDirectory, UnknownName
from consumers.api.page_files import REVALIDATE, PageFiles
from consumers.api.predict import json_response
from consumers.api.responses import UNAVAILABLE, UNKNOWN_NAME
from consumers.api.serving import ModelHolder
from parivision.schemas import MAX_ID
from parivision.settings import Settings
from parivision.store import SHOTS

log = logging.getLogger("parivision.api")

STATIC = Path(__file__).resolve().parent / "static"
# How long starting waits for the champion before serving without it.
FIRST_LOOK_S = 15.0


def create_app(
    settings: Settings,
    *,
    extra_routers: Iterable[APIRouter] = (),
    follow_feed: bool = True,
) -> FastAPI:
    """Build the app for ``settings``.

    Args:
        settings: where the broker, database and registry are, and the API's own settings.
        extra_routers: more routes to serve (the original VirtualBets API, mounted by the
            ``parivision serve`` face, which may use the producers).
        follow_feed: follow ``shots.scored`` for the WebSocket feed (off in tests that need
            no broker).
    """
    # Connected on the first request that reads the store (health answers for it when down).
    mongo = MongoClient(
        settings.mongodb(),
        serverSelectionTimeoutMS=3000,
        connectTimeoutMS=3000,
        tz_aware=False,
        connect=False,
    )
    db = mongo[settings.database()]
    holder = ModelHolder(settings)
    warm = None
    if settings.form_history:  # players' form starts where the champion's training left it
        from models.data import warm_start

        warm = warm_start(settings.form_history)
    histories = PlayerHistories(db, warm_start=warm)
    hub = Hub(settings.live_queue, settings.live_max_missed)
    players = PlayerDirectory(db[SHOTS])
    feed = Feed(settings, lambda batch: None, on_outcome=histories.record) if follow_feed else None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        loop = asyncio.get_running_loop()
        # The registry may be slow or down: the champion is loaded in the background, and the
        # API starts serving health and history after a few seconds whatever the registry does
        # (predictions answer 503 until the champion is there).
        holder.start()
        await asyncio.to_thread(holder.first_look.wait, FIRST_LOOK_S)
        if feed is not None:
            feed.deliver = on_loop(loop, hub)
            feed.start()
        try:
            yield
        finally:
            if feed is not None:
                await asyncio.to_thread(feed.stop)
            await asyncio.to_thread(holder.stop)
            mongo.close()

    app = FastAPI(
        title="PariVision live API",
        description="Live NBA shot-make probabilities: predictions, history, models, a "
        "WebSocket feed of every scored shot and the live court page.",
        version="1.0",
        lifespan=lifespan,
    )
    app.state.settings, app.state.hub, app.state.feed, app.state.holder = (
        settings,
        hub,
        feed,
        holder,
    )

    @app.exception_handler(MlflowException)
    async def registry_down(request: Request, error: MlflowException) -> Response:
        return json_response(
            {"detail": f"model registry at {settings.mlflow()} unavailable: {error}"[:500]},
            status_code=503,
        )

    @app.exception_handler(PyMongoError)
    async def database_down(request: Request, error: PyMongoError) -> Response:
        return json_response(
            {"detail": f"database {settings.database()!r} unavailable: {error}"[:500]},
            status_code=503,
        )

    @app.exception_handler(UnknownName)
    async def unknown_name(request: Request, error: UnknownName) -> Response:
        return json_response({"detail": str(error), "nearest": error.nearest}, status_code=404)

    metrics = api_metrics()
    app.state.metrics = metrics
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.include_router(api_metrics_router(metrics, hub))
    app.include_router(predict.router(holder, histories, metrics["predictions"]))
    app.include_router(whatif.router(holder, histories, db, hub.last_seen))
    app.include_router(queries.router(db, histories, players))
    app.include_router(registry_routes.router(settings, db))
    app.include_router(health.router(settings, db, holder, feed, hub))
    app.include_router(admin.router(settings, db, holder))
    app.include_router(reports.router(settings))
    for extra in extra_routers:
        app.include_router(extra)

    @app.get(
        "/live/recent",
        tags=["live"],
        summary="The last messages of the live feed",
        responses={**UNKNOWN_NAME, **UNAVAILABLE},
    )
    def live_recent(
        limit: Annotated[int, Query(ge=1, le=2000)] = 500,
        game_id: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
        player_id: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
        player: Annotated[str | None, Query(min_length=1, max_length=80)] = None,
        team: Annotated[str | None, Query(min_length=1, max_length=80)] = None,
    ) -> Response:
        """``team`` and ``player`` take names or ids; an unknown one is 404 with the nearest."""
        spec = {"game_id": game_id, "player_id": player_id, "player": player, "team": team}
        try:
            wanted = {k: v for k, v in spec.items() if v is not None}
            messages = recent(hub, limit, wanted, players)
        except ValueError as error:  # player and player_id name different players
            detail = [{"loc": ["query", "player"], "msg": str(error), "type": "value_error"}]
            return json_response({"detail": detail}, status_code=422)
        return json_response({"messages": messages})

    @app.websocket("/ws/live")
    async def live(websocket: WebSocket) -> None:
        await serve_client(websocket, hub, players)

    if STATIC.is_dir():
        app.mount("/static", PageFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> Response:
        index = STATIC / "index.html"
        if not index.is_file():
            return json_response({"detail": "the live page is not installed"}, status_code=404)
        return FileResponse(index, headers=REVALIDATE)

    return app
