"""``GET /models`` and ``GET /models/champion``: the registry as promotion left it.

Promotion and rollback write their decisions as tags on the versions (``challenge.*``,
``replaced_by``, ``restored_at``; see :mod:`models.promotion`), and training writes the
candidate, feature set and validation metrics; these routes show them as they are.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

from consumers.api.predict import json_response
from consumers.api.responses import NOT_STORED, UNAVAILABLE
from models import registry
from models.metrics import METRIC_NAMES
from models.promotion import TAG_PREFIX
from parivision.settings import Settings


def _number(text: str | None) -> float | None:
    try:
        return None if text is None else float(text)
    except ValueError:
        return None


def describe_version(version: Any, aliases: list[str]) -> dict[str, Any]:
    """One registered version: aliases, candidate, metrics and promotion tags."""
    tags = dict(version.tags or {})
    challenge = {k[len(TAG_PREFIX) :]: v for k, v in tags.items() if k.startswith(TAG_PREFIX)}
    created = datetime.fromtimestamp(version.creation_timestamp / 1000, tz=UTC).isoformat()
    return {
        "version": str(version.version),
        "aliases": sorted(aliases),
        "created_at": created,
        "candidate": tags.get("candidate"),
        "feature_set": tags.get("feature_set"),
        "data": tags.get("data"),
        "description": version.description,
        "metrics": {name: _number(tags.get(name)) for name in METRIC_NAMES if name in tags},
        "challenge": challenge,
        "replaced_by": tags.get("replaced_by"),
        "replaced_at": tags.get("replaced_at"),
        "restored_at": tags.get("restored_at"),
        "shadow": {k[len("shadow.") :]: v for k, v in tags.items() if k.startswith("shadow.")},
        "tags": tags,
    }


def _promoted(described: dict[str, Any]) -> dict[str, Any]:
    challenge = described["challenge"]
    if described.get("restored_at"):
        return {"how": "rolled back to", "at": described["restored_at"]}
    tags = described["tags"]
    if tags.get("promoted.how") in ("forced", "shadow"):
        return {
            "how": "promoted after its shadow" if tags["promoted.how"] == "shadow" else "forced",
            "at": tags.get("promoted.at"),
            "reason": tags.get("promoted.reason"),
            "replaced": challenge.get("champion_version"),
            "window_shots": challenge.get("window_shots"),
        }
    if challenge.get("decision") == "promoted":
        return {
            "how": "promoted",
            "at": challenge.get("decided_at"),
            "reason": challenge.get("reason"),
            "replaced": challenge.get("champion_version"),
            "window_shots": challenge.get("window_shots"),
        }
    return {"how": "trained as champion", "at": described["created_at"]}


def _shadow(settings: Settings, db) -> dict[str, Any] | None:
    """The version in shadow, its terms and its live log loss beside the champion's so far
    (from the store); None when none shadows."""
    from pymongo.errors import PyMongoError

    from models.promotion.shadow import progress

    try:
        return progress(settings, db)
    except PyMongoError as error:  # the registry's answer stands without the evidence
        return {"error": f"MongoDB ({settings.database()!r}) did not answer: {error}"}


def router(settings: Settings, db=None) -> APIRouter:
    api = APIRouter(tags=["models"])

    def versions() -> list[dict[str, Any]]:
        client = registry.client(settings)
        found = client.search_model_versions(f"name='{settings.registered_model()}'")
        if not found:
            return []
        # Searched versions carry no aliases (MLflow 3): the registered model has them all.
        aliases: dict[str, list[str]] = {}
        for alias, version in client.get_registered_model(
            settings.registered_model()
        ).aliases.items():
            aliases.setdefault(str(version), []).append(alias)
        described = [describe_version(v, aliases.get(str(v.version), [])) for v in found]
        return sorted(described, key=lambda d: int(d["version"]), reverse=True)

    @api.get("/models", summary="Every registered version", responses=UNAVAILABLE)
    def models() -> Response:
        return json_response(
            {
                "name": settings.registered_model(),
                "champion_alias": settings.champion_alias,
                "shadow": _shadow(settings, db) if db is not None else None,
                "versions": versions(),
            }
        )

    @api.get(
        "/models/champion",
        summary="The champion: metrics, and when and why promoted",
        responses={**NOT_STORED, **UNAVAILABLE},
    )
    def champion() -> Response:
        for described in versions():
            if settings.champion_alias in described["aliases"]:
                return json_response({**described, "promoted": _promoted(described)})
        raise HTTPException(
            404,
            detail=f"no version of {settings.registered_model()!r} is champion: "
            "run `parivision train`",
        )

    return api
