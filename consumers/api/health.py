"""``GET /health``: is the broker, the database and the registry there, and is the API fed?

Each check runs in its own thread with a deadline, so one hung service cannot hide the others.
When any of the three fails the answer is 503 with ``"status": "degraded"``, the failing checks
in ``failing`` (``"database"``, say) and each one's ``detail`` naming the service ("MongoDB
unreachable: ..."); 200 with ``"status": "ok"`` again as soon as every check passes.

503 rather than 200 with a flag, because what polls ``/health`` is a load balancer, the compose
healthcheck (``curl -f``) or a readiness probe, and they read the status code: with the database
away, history and predictions answer 503 too, so this instance should take no traffic that
needs them.  The process is not stuck and needs no restart; it recovers by itself (the drivers
reconnect), which is why nothing here should be wired to a liveness probe.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from confluent_kafka.admin import AdminClient
from fastapi import APIRouter
from fastapi.responses import Response

from consumers.api.live_feed import Feed
from consumers.api.live_hub import Hub
from consumers.api.predict import json_response
from consumers.api.serving import ModelHolder
from models import registry
from parivision.settings import Settings

CHECK_TIMEOUT_S = 4.0
# What each check names in its detail when it fails: the service an operator has to look at.
SERVICES = {"broker": "Kafka", "database": "MongoDB", "registry": "MLflow"}


def _broker(settings: Settings) -> str:
    topics = AdminClient(
        {"bootstrap.servers": settings.kafka(), "socket.timeout.ms": 3000}
    ).list_topics(timeout=3)
    return f"{settings.kafka()}: {len(topics.brokers)} broker(s), {len(topics.topics)} topics"


def _database(db) -> str:
    db.client.admin.command("ping")
    return f"{db.name}: reachable"


def _registry(settings: Settings) -> str:
    version = registry.champion_version(settings)
    return f"{settings.registered_model()} champion v{version}" if version else "no champion yet"


def router(settings: Settings, db, holder: ModelHolder, feed: Feed | None, hub: Hub) -> APIRouter:
    api = APIRouter(tags=["health"])
    # Room for checks that hang past their deadline without starving the next health call.
    pool = ThreadPoolExecutor(max_workers=24, thread_name_prefix="health")

    @api.get(
        "/health",
        summary="Broker, database and registry; 503 naming what fails",
        responses={
            503: {
                "description": "Degraded: the same body, `failing` naming the checks that fail",
                "content": {"application/json": {}},
            }
        },
    )
    def health() -> Response:
        started = time.perf_counter()
        futures = {
            "broker": pool.submit(_broker, settings),
            "database": pool.submit(_database, db),
            "registry": pool.submit(_registry, settings),
        }
        checks: dict[str, dict[str, Any]] = {}
        for name, future in futures.items():
            try:
                checks[name] = {"ok": True, "detail": future.result(timeout=CHECK_TIMEOUT_S)}
            except FutureTimeout:
                problem = f"no answer in {CHECK_TIMEOUT_S:.0f} s"
                checks[name] = {"ok": False, "detail": f"{SERVICES[name]} unreachable: {problem}"}
            except Exception as error:  # every driver has its own errors; all mean "down"
                problem = f"{type(error).__name__}: {error}"
                checks[name] = {
                    "ok": False,
                    "detail": f"{SERVICES[name]} unreachable: {problem}"[:500],
                }
        served = holder.served
        failing = [name for name, check in checks.items() if not check["ok"]]
        body = {
            "status": "degraded" if failing else "ok",
            "failing": failing,
            "checks": checks,
            "model": served.info or None,
            "model_error": holder.error,
            "online_learners": list(served.learners),
            "live": {
                "following": feed is not None and feed.positioned.is_set(),
                "read": feed.read if feed is not None else 0,
                "error": feed.last_error if feed is not None else None,
                "clients": len(hub.clients),
                "dropped_for_clients": sum(c.total_missed for c in hub.clients),
                "closed_too_slow": hub.closed_slow,
            },
            "seconds": round(time.perf_counter() - started, 3),
        }
        return json_response(body, status_code=503 if failing else 200)

    return api
