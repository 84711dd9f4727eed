"""``POST /predict``, ``POST /predict/batch`` and ``GET /whatif``: the champion's answer for shots.

One path scores both: form from each player's stored history (:mod:`consumers.api.history`),
the one feature function, the champion on the whole batch at once, then the online learners row
by row.  A batch of 10,000 costs one registry lookup, one MongoDB query per unseen player and
one LightGBM call, which is why it is many times faster per shot than one request per shot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from consumers.api.history import PlayerHistories
from consumers.api.serving import ModelHolder, Served
from consumers.api.shots_in import BadShot, parse_shot, shot_input_schema
from models.features import build_features, columns_from_records, feature_dict
from models.form import FORM_NAMES, form_values
from models.online import learner_features, learner_input
from models.registry import P_MAX, P_MIN
from parivision.court import zone_for
from parivision.schemas import MAX_ID, shot_id_for
from parivision.store import PREDICTIONS

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
    form, used = [], []
    for shot in shots:
        state, history = by_player[shot["player_id"]].form_state(shot["shot_id"])
        form.append(form_values(state, shot))
        used.append(history)
    matrix = build_features(columns_from_records(shots), form=np.asarray(form, dtype=np.float64))
    probabilities = np.clip(champion.predict(matrix), P_MIN, P_MAX).tolist()
    learners = list(served.learners.items())
    out = []
    for shot, row, p, history in zip(shots, matrix, probabilities, used, strict=True):
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


def router(
    holder: ModelHolder,
    histories: PlayerHistories,
    db,
    last_seen: Callable[[int], dict[str, Any] | None] = lambda player_id: None,
    predicted: Any = None,
) -> APIRouter:
    """The prediction routes; ``last_seen(player_id)`` is the player's latest shot on the live
    feed, for a what-if about a player the sink has not stored yet; ``predicted`` (a Prometheus
    counter) counts the shots scored."""
    api = APIRouter(tags=["predict"])

    @api.post("/predict", openapi_extra=_shot_body_doc(), summary="Score one shot")
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

    @api.post("/predict/batch", openapi_extra=_batch_body_doc(), summary="Score up to 10,000 shots")
    async def predict_batch(
        request: Request, features: Annotated[bool, Query()] = False
    ) -> Response:
        """``{"shots": [...]}``, 1 to 10,000; answers in the same order."""
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
        shots, errors = await run_in_threadpool(_parse_all, shots_raw)
        if errors:
            raise RequestValidationError(errors[:50])
        served = holder.served
        answers = await run_in_threadpool(
            score, served, histories, shots, include_features=features
        )
        if predicted is not None:
            predicted.inc(len(answers))
        return json_response({"model": served.info, "predictions": answers})

    @api.get("/whatif", summary="What if this player shot from here")
    def whatif(
        player_id: Annotated[int, Query(gt=0, le=MAX_ID)],
        x: Annotated[int, Query(ge=-250, le=250)],
        y: Annotated[int, Query(ge=-52, le=940)],
        game_id: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
        period: Annotated[int | None, Query(ge=1, le=10)] = None,
        minutes_remaining: Annotated[int | None, Query(ge=0, le=12)] = None,
        seconds_remaining: Annotated[int | None, Query(ge=0, le=59)] = None,
        action_type: Annotated[str | None, Query(min_length=1, max_length=80)] = None,
    ) -> Response:
        """The shot the NBA would record for this player at X/Y (zones, distance and shot type
        from the location), in the player's latest stored game unless given, and the champion's
        answer for it. POSTing the returned ``shot`` to ``/predict`` gives the same answer."""
        latest = last_seen(player_id) or db[PREDICTIONS].find_one(
            {"player_id": player_id}, sort=[("scored_at", -1)], projection={"_id": 0}
        )
        if latest is None and game_id is None:
            raise HTTPException(
                404, detail=f"no stored shots for player {player_id}: pass game_id to ask anyway"
            )
        latest = latest or {}
        zone = zone_for(x, y)
        shot = {
            "game_id": game_id or latest.get("game_id"),
            "game_event_id": None,
            "player_id": player_id,
            "player_name": latest.get("player_name") or "",
            "team_id": latest.get("team_id") or 0,
            "team_name": latest.get("team_name") or "",
            "period": period or latest.get("period") or 1,
            "minutes_remaining": _given(minutes_remaining, latest.get("minutes_remaining"), 6),
            "seconds_remaining": _given(seconds_remaining, latest.get("seconds_remaining"), 0),
            "action_type": action_type or ("Layup Shot" if zone.shot_distance < 4 else "Jump Shot"),
            **zone._asdict(),
            "x": x,
            "y": y,
            "game_date": latest.get("game_date") or 20190101,
            "season_type": "Regular Season",
        }
        shot["shot_id"] = shot_id_for(
            shot["game_id"],
            None,
            period=shot["period"],
            minutes_remaining=shot["minutes_remaining"],
            seconds_remaining=shot["seconds_remaining"],
            player_id=player_id,
            x=x,
            y=y,
        )
        try:
            parsed = parse_shot(shot, ("query",))
        except BadShot as error:
            raise RequestValidationError(error.errors) from None
        answer = score(holder.served, histories, [parsed])[0]
        return json_response({"shot": parsed, "prediction": answer})

    return api


def _parse_all(items: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    shots, errors = [], []
    for i, item in enumerate(items):
        try:
            shots.append(parse_shot(item, ("body", "shots", i)))
        except BadShot as error:
            errors.extend(error.errors)
    return shots, errors


def _given(value: int | None, stored: Any, default: int) -> int:
    if value is not None:
        return value
    return stored if isinstance(stored, int) else default
