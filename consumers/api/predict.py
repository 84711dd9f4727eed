"""``POST /predict``, ``POST /predict/batch`` and ``GET /whatif``: the champion's answer for shots.

One path scores both: form from each player's stored history (:mod:`consumers.api.history`),
the one feature function, the champion on the whole batch at once, then the online learners row
by row.  A batch of 10,000 costs one registry lookup, one MongoDB query per unseen player and
one LightGBM call, which is why it is many times faster per shot than one request per shot.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from consumers.api.history import PlayerHistories
from consumers.api.responses import NO_CHAMPION
from consumers.api.serving import ModelHolder, Served
from consumers.api.shots_in import BadShot, parse_shot, shot_input_schema
from models.features import build_features, columns_from_records, feature_dict
from models.form import FORM_NAMES, form_values
from models.inputs import as_priced
from models.online import learner_features, learner_input
from models.registry import P_MAX, P_MIN

MAX_BATCH = 10_000


def json_response(payload: Any, status_code: int = 200) -> Response:
    """JSON through orjson: a 10,000-shot answer is encoded in milliseconds, not a second."""
    return Response(
        orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status_code,
        media_type="application/json",
    )


def score(
    served: Served,
    histories: PlayerHistories,
    shots: list[dict[str, Any]],
    *,
    include_features: bool = False,
) -> list[dict[str, Any]]:
    """Score validated shots (the :class:`Shot` fields); one answer per shot, in order."""
    champion = served.champion
    if champion is None:
        raise HTTPException(503, detail="no champion to score with: run `parivision train`")
    by_player = histories.get_many({shot["player_id"] for shot in shots})
    form, used, priced, warned = [], [], [], []
    for shot in shots:
        # What the model is asked, with a warning for each input it would misread.
        as_asked, warnings = as_priced(shot)
        state, history = histories.form_state(by_player[shot["player_id"]], as_asked)
        form.append(form_values(state, as_asked))
        used.append(history)
        priced.append(as_asked)
        warned.append(warnings)
    matrix = build_features(columns_from_records(priced), form=np.asarray(form, dtype=np.float64))
    probabilities = np.clip(champion.predict(matrix), P_MIN, P_MAX).tolist()
    learners = list(served.learners.items())
    out = []
    for shot, row, p, history, warnings in zip(
        priced, matrix, probabilities, used, warned, strict=True
    ):
        features = feature_dict(row)
        seen = learner_features(features)
        value = 3 if shot["shot_type"].startswith("3") else 2
        answer = {
            "shot_id": shot["shot_id"],
            "player_id": shot["player_id"],
            "game_id": shot["game_id"],
            "probability": p,
            "fair_odds": 1.0 / p,
            "shot_value": value,
            "expected_points": p * value,
            "online": {
                name: min(
                    max(
                        model.predict_proba_one(learner_input(model, seen, p, shot)).get(True, 0.5),
                        P_MIN,
                    ),
                    P_MAX,
                )
                for name, model in learners
            },
            "model": served.info,
            "form": {name: features.get(name) for name in FORM_NAMES},
            "form_history": history,
            "warnings": warnings,
        }
        if include_features:
            answer["features"] = features
        out.append(answer)
    return out


def _shot_body_doc() -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": shot_input_schema()}},
        }
    }


def _batch_body_doc() -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {
            "shots": {
                "type": "array",
                "items": shot_input_schema(),
                "minItems": 1,
                "maxItems": MAX_BATCH,
            }
        },
        "required": ["shots"],
    }
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


async def _json_body(request: Request) -> Any:
    body = await request.body()
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise RequestValidationError(
            [{"loc": ["body"], "msg": f"not valid JSON: {error}", "type": "json_invalid"}]
        ) from None


def router(holder: ModelHolder, histories: PlayerHistories, predicted: Any = None) -> APIRouter:
    """``/predict`` and ``/predict/batch``; ``predicted`` (a Prometheus counter) counts the
    shots scored."""
    api = APIRouter(tags=["predict"])

    @api.post(
        "/predict",
        openapi_extra=_shot_body_doc(),
        summary="Score one shot",
        responses=NO_CHAMPION,
    )
    async def predict(request: Request, features: Annotated[bool, Query()] = False) -> Response:
        """The champion's probability, fair odds, expected points and the online learners'
        probabilities for one shot (a VirtualBets record or the project's shot schema)."""
        raw = await _json_body(request)
        try:
            shot = parse_shot(raw)
        except BadShot as error:
            raise RequestValidationError(error.errors) from None
        # Off the event loop: a history may have to be read from MongoDB first.
        answers = await run_in_threadpool(
            score, holder.served, histories, [shot], include_features=features
        )
        if predicted is not None:
            predicted.inc()
        return json_response(answers[0])

    @api.post(
        "/predict/batch",
        openapi_extra=_batch_body_doc(),
        summary="Score up to 10,000 shots",
        responses=NO_CHAMPION,
    )
    async def predict_batch(
        request: Request, features: Annotated[bool, Query()] = False
    ) -> Response:
        """``{"shots": [...]}``, 1 to 10,000; one result per shot in the same order: its answer,
        or ``{"index", "errors"}`` for a shot that cannot be scored (``refused`` counts them).
        Only a batch with no shot to score is refused whole (422)."""
        raw = await _json_body(request)
        shots_raw = raw.get("shots") if isinstance(raw, dict) else None
        if not isinstance(shots_raw, list):
            raise RequestValidationError(
                [
                    {
                        "loc": ["body", "shots"],
                        "msg": "a list of shots is required",
                        "type": "missing",
                    }
                ]
            )
        if not 1 <= len(shots_raw) <= MAX_BATCH:
            raise RequestValidationError(
                [
                    {
                        "loc": ["body", "shots"],
                        "msg": f"{len(shots_raw):,} shots; a batch holds 1 to {MAX_BATCH:,}",
                        "type": "too_short" if not shots_raw else "too_long",
                    }
                ]
            )
        parsed = await run_in_threadpool(_parse_all, shots_raw)
        shots = [shot for shot in parsed if "errors" not in shot]
        if not shots:  # nothing to score: the request is wrong
            raise RequestValidationError([e for item in parsed for e in item["errors"]][:50])
        served = holder.served
        answers = iter(
            await run_in_threadpool(score, served, histories, shots, include_features=features)
        )
        if predicted is not None:
            predicted.inc(len(shots))
        # One result per shot, in order: a bad shot gets its errors, the others their answer.
        results = [shot if "errors" in shot else next(answers) for shot in parsed]
        return json_response(
            {
                "model": served.info,
                "predictions": results,
                "refused": len(parsed) - len(shots),
            }
        )

    return api


def _parse_all(items: list[Any]) -> list[dict[str, Any]]:
    """Each item's shot, or ``{"index", "errors"}`` for an item that is not one."""
    out = []
    for i, item in enumerate(items):
        try:
            out.append(parse_shot(item, ("body", "shots", i)))
        except BadShot as error:
            out.append({"index": i, "errors": error.errors})
    return out
