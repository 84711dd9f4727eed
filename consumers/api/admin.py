"""Admin actions: retrain now, promote a version, roll back; each needs ``X-API-Key``.

The key is ``Settings.api_key`` (a ``SecretStr``, from the environment or the git-ignored
``.env``).  Without a key configured, or with a wrong one, every admin route answers 401 before
anything happens.  A retrain runs in a background thread (one at a time) and is followed at
``GET /admin/jobs/{id}``; promotion and rollback answer with the decision, as the CLI prints it.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Security
from fastapi.responses import Response
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool

from consumers.api.predict import json_response
from consumers.api.responses import CONFLICT, NOT_STORED, UNAUTHORIZED, UNAVAILABLE
from consumers.api.serving import ModelHolder
from consumers.retrain_trigger import loop_from_settings
from parivision.settings import Settings

# Declared as the routes' security scheme (``/docs`` offers "Authorize"); checked below, so
# that a missing key and a wrong one get the same 401.
API_KEY = APIKeyHeader(name="X-API-Key", auto_error=False, description="PARIVISION_API_KEY")


def _key_check(settings: Settings):
    def check(x_api_key: Annotated[str | None, Security(API_KEY)] = None) -> None:
        expected = settings.api_key.get_secret_value() if settings.api_key else ""
        # Compared as bytes: compare_digest refuses a str with a non-ASCII character (a 500).
        given = (x_api_key or "").encode("utf-8", "surrogateescape")
        if not expected or not given or not secrets.compare_digest(given, expected.encode()):
            raise HTTPException(
                401,
                detail="admin routes need the X-API-Key header set to PARIVISION_API_KEY",
                headers={"WWW-Authenticate": "X-API-Key"},
            )

    return check


def router(settings: Settings, db, holder: ModelHolder) -> APIRouter:
    api = APIRouter(
        prefix="/admin",
        tags=["admin"],
        dependencies=[Depends(_key_check(settings))],
        responses=UNAUTHORIZED,
    )
    jobs: dict[str, dict[str, Any]] = {}
    running = threading.Lock()

    def run_retrain(job: dict[str, Any]) -> None:
        try:
            event = loop_from_settings(settings, db).step(manual="api")
            job.update(status="done", result={k: v for k, v in (event or {}).items() if k != "_id"})
        except Exception as error:  # reported on the job, not lost in a thread
            job.update(status="failed", error=f"{type(error).__name__}: {error}")
        finally:
            job["finished_at"] = time.time()
            running.release()
            holder.refresh()

    @api.post("/retrain", status_code=202, summary="Retrain a challenger now", responses=CONFLICT)
    def retrain() -> Response:
        if not running.acquire(blocking=False):
            raise HTTPException(409, detail="a retrain is already running")
        job = {"id": uuid.uuid4().hex[:12], "status": "running", "started_at": time.time()}
        jobs[job["id"]] = job
        # The answer says what was started: the job, as it is before its thread moves it on.
        answer = json_response(dict(job), status_code=202)
        threading.Thread(target=run_retrain, args=(job,), daemon=True).start()
        return answer

    @api.get("/jobs/{job_id}", summary="A retrain job's state", responses=NOT_STORED)
    def job(job_id: str) -> Response:
        if job_id not in jobs:
            raise HTTPException(404, detail=f"no job {job_id}")
        return json_response(jobs[job_id], status_code=200)

    @api.post(
        "/promote/{version}",
        summary="Challenge the champion with this version",
        responses={**CONFLICT, **UNAVAILABLE},
    )
    async def promote(
        version: str,
        window: Annotated[int | None, Query(ge=1)] = None,
        margin: Annotated[float | None, Query(ge=0)] = None,
        now: Annotated[
            bool, Query(description="Promote at once if it passes, without a shadow first.")
        ] = False,
        force: Annotated[
            bool,
            Query(
                description="Promote without a check; the previous champion still watches it "
                "and it is rolled back if it does worse live."
            ),
        ] = False,
    ) -> Response:
        from models.promotion import PromotionError, challenge
        from models.promotion import promote as promote_now
        from models.registry import resolve_version

        def run():
            if force:
                return promote_now(
                    settings,
                    resolve_version(settings, version),
                    reason="promoted through the API with force, without a challenge",
                    how="forced",
                )
            return challenge(settings, version, window=window, margin=margin, now=now)

        try:
            decision = await run_in_threadpool(run)
        except (PromotionError, LookupError, ValueError) as error:
            raise HTTPException(409, detail=str(error)) from None
        await run_in_threadpool(holder.refresh)
        return json_response(decision.as_event())

    @api.post(
        "/rollback",
        summary="Give the champion alias back to the version it replaced",
        responses={**CONFLICT, **UNAVAILABLE},
    )
    async def rollback() -> Response:
        from models.promotion import PromotionError
        from models.promotion import rollback as roll_back

        try:
            decision = await run_in_threadpool(roll_back, settings)
        except (PromotionError, LookupError) as error:
            raise HTTPException(409, detail=str(error)) from None
        await run_in_threadpool(holder.refresh)
        return json_response(decision.as_event())

    return api
