"""The answers other than 200 that routes document, shared so each says what it can answer.

Every route lists each status it can answer with its body (``responses=`` on the route):
a client, ``/docs`` and schemathesis read the same promise the server keeps.  422 is
FastAPI's own ``HTTPValidationError`` (every 422 here has that shape, ``detail: [{loc, msg,
type}]``); the others are built from the pieces below, e.g.
``responses={**NOT_STORED, **UNAVAILABLE}``.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from pydantic import BaseModel, Field


class Problem(BaseModel):
    """What went wrong, in a sentence that says what to do."""

    detail: str


class UnknownNameProblem(BaseModel):
    """A team or player name that matches no one (or more than one)."""

    detail: str
    nearest: list[str] = Field(description="the closest names: what to type instead")


def _answer(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"model": model, "description": description}


UNAUTHORIZED = {
    401: _answer(Problem, "No `X-API-Key` header, or not the one `PARIVISION_API_KEY` sets")
}
NOT_STORED = {404: _answer(Problem, "Nothing stored for that id")}
UNKNOWN_NAME = {
    404: _answer(UnknownNameProblem, "No team or player by that name; `nearest` names the closest")
}
CONFLICT = {409: _answer(Problem, "Refused in the registry's present state (the detail says why)")}
UNAVAILABLE = {
    503: _answer(Problem, "MongoDB or the MLflow registry cannot be reached (the detail names it)")
}
NO_CHAMPION = {
    503: _answer(
        Problem,
        "No champion to score with yet (`parivision train`), or MongoDB or the registry cannot "
        "be reached (the detail says which)",
    )
}


def unprocessable(field: str, msg: str) -> HTTPException:
    """A 422 on one query parameter, in FastAPI's own shape (``detail: [{loc, msg, type}]``)."""
    return HTTPException(422, detail=[{"loc": ["query", field], "msg": msg, "type": "value_error"}])
