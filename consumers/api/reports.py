"""``GET /reports/drift`` and ``GET /reports/drift.json``: the latest Evidently drift report.

The checks are saved by the drift check (``parivision drift``, and every check of
``parivision retrain-loop``) under the home's ``reports/`` folder: the summary served as
``drift.json``, and the frames it was computed from.  Evidently's HTML report of the latest
check is drawn from those the first time it is asked for (seconds), then served as drawn
(:mod:`models.drift_checks`).
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response

from consumers.api.predict import json_response
from consumers.api.responses import Problem
from models.drift_checks import latest_report
from models.drift_report import latest_summary, reports_folder
from parivision.settings import Settings


def _missing(settings: Settings) -> HTTPException:
    folder = reports_folder(settings)
    return HTTPException(
        404,
        detail=f"no drift report in {folder} yet: run `parivision drift`, or let "
        "`parivision retrain-loop` run a check, with the same PARIVISION_HOME",
    )


def router(settings: Settings) -> APIRouter:
    api = APIRouter(prefix="/reports", tags=["reports"])

    @api.get(
        "/drift",
        summary="The latest Evidently drift and quality report (HTML)",
        response_class=HTMLResponse,
        responses={
            404: {
                "description": "No drift check has run yet",
                "content": {"application/json": {"schema": Problem.model_json_schema()}},
            }
        },
    )
    def drift_html() -> Response:
        # A sync route: drawing a report runs in the server's thread pool, not its event loop.
        try:
            path = latest_report(reports_folder(settings))
        except ValueError as error:
            raise HTTPException(500, detail=f"cannot draw the drift report: {error}") from error
        if path is None:
            raise _missing(settings)
        # Read whole (a few MB): reports are written atomically, so this is one report.
        return HTMLResponse(path.read_bytes())

    @api.get(
        "/drift.json",
        summary="The latest drift check's summary",
        responses={404: {"model": Problem, "description": "No drift check has run yet"}},
    )
    def drift_json() -> Response:
        summary = latest_summary(reports_folder(settings))
        if summary is None:
            raise _missing(settings)
        return json_response(summary)

    return api
