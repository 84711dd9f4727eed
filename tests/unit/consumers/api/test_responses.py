"""The answers other than 200 a route documents: each says, in `/docs` and to a client, which
status it can answer and with which body."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException

from consumers.api.responses import (
    CONFLICT,
    NO_CHAMPION,
    NOT_STORED,
    UNAUTHORIZED,
    UNAVAILABLE,
    UNKNOWN_NAME,
    Problem,
    UnknownNameProblem,
)


def test_each_answer_is_one_status_with_a_body_model_and_a_description():
    statuses = {}
    for answer in (UNAUTHORIZED, NOT_STORED, UNKNOWN_NAME, CONFLICT, UNAVAILABLE, NO_CHAMPION):
        ((status, spec),) = answer.items()
        statuses.setdefault(status, []).append(spec["model"])
        assert spec["description"]
    assert sorted(statuses) == [401, 404, 409, 503]
    assert statuses[404] == [Problem, UnknownNameProblem]


def test_an_unknown_name_answer_names_the_nearest():
    body = UnknownNameProblem(detail="no team 'Lakerz'", nearest=["Los Angeles Lakers"])
    assert body.model_dump() == {"detail": "no team 'Lakerz'", "nearest": ["Los Angeles Lakers"]}
    assert UnknownNameProblem.model_json_schema()["required"] == ["detail", "nearest"]


def test_a_route_s_documented_answers_are_in_its_openapi_with_their_bodies():
    app = FastAPI()

    @app.get("/games/{game_id}", responses={**NOT_STORED, **UNAVAILABLE})
    def game(game_id: int):
        raise HTTPException(404, detail=f"no stored shots for game {game_id}")

    documented = app.openapi()["paths"]["/games/{game_id}"]["get"]["responses"]
    assert sorted(documented) == ["200", "404", "422", "503"]
    for status in ("404", "503"):
        schema = documented[status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Problem"}
    assert "MongoDB or the MLflow registry" in documented["503"]["description"]
