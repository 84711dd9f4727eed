"""The API's Prometheus metrics, served on its own app at ``/metrics``.

Requests are counted by route template (``/players/{player_id}``, not each id), method and
status by a plain ASGI middleware, so the count costs no extra task per request; the live feed's
clients and dropped messages are read from the hub when Prometheus scrapes.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.routing import Match

from parivision.metrics import API, Metrics, for_job


class RequestMetrics:
    """ASGI middleware: one count and one duration per HTTP request, by route template."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.requests = metrics["requests"]
        self.seconds = metrics["request_seconds"]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_status(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = route_template(scope)
            self.requests.labels(
                route=route, method=scope["method"], status=str(status["code"])
            ).inc()
            self.seconds.labels(route=route).observe(time.perf_counter() - started)


def route_template(scope: dict[str, Any]) -> str:
    """The path template that served a request; unmatched paths share one label."""
    route = scope.get("route")
    if route is not None and getattr(route, "path", None):
        return route.path
    app = scope.get("app")
    for candidate in getattr(getattr(app, "router", None), "routes", ()):
        match, _ = candidate.matches(scope)
        if match is Match.FULL:
            return getattr(candidate, "path", "other")
    return "unmatched"


def router(metrics: Metrics, hub: Any) -> APIRouter:
    """``GET /metrics`` for Prometheus."""
    api = APIRouter(tags=["health"])
    exported = {"dropped": 0}

    @api.get(
        "/metrics",
        summary="Prometheus metrics of this API process",
        response_class=PlainTextResponse,
        responses={200: {"description": "The Prometheus text exposition format"}},
    )
    def scrape() -> Response:
        metrics["live_clients"].set(len(hub.clients))
        dropped = hub.dropped - exported["dropped"]
        if dropped > 0:
            metrics["live_dropped"].inc(dropped)
            exported["dropped"] = hub.dropped
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return api


def api_metrics() -> Metrics:
    return for_job(API)
