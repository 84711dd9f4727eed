"""``POST /predict``, ``POST /predict/batch`` and ``GET /whatif``: the champion's answer for shots.

One path scores both: form from each player's stored history (:mod:`consumers.api.history`),
the one feature function, the champion on the whole batch at once, then the online learners row
by row.  A batch of 10,000 costs one registry lookup, one MongoDB query per unseen player and
one LightGBM call, which is why it is many times faster per shot than one request per shot.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal

import numpy as np
import orjson
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from consumers.api.history import PlayerHistories
from consumers.api.responses import NO_CHAMPION, NOT_STORED
from consumers.api.serving import ModelHolder, Served
from consumers.api.shots_in import BadShot, parse_shot, shot_input_schema
from models.features import build_features, columns_from_records, feature_dict
from models.form import FORM_NAMES, form_values
from models.inputs import as_priced, season_type_for
from models.online import learner_features, learner_input
from models.registry import P_MAX, P_MIN
from parivision.court import zone_for
from parivision.schemas import MAX_ID, shot_id_for
from parivision.store import PREDICTIONS

MAX_BATCH = 10_000
# The what-if's game when none is given: a new game, an id no NBA game has (they are 8 digits).
NEW_GAME = MAX_ID
DEFAULT_PERIOD, DEFAULT_MINUTES = 1, 6
SeasonType = Literal["Regular Season", "Playoffs", "Pre Season", "PlayIn", "All Star"]


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

    @api.get(
        "/whatif",
        summary="What if this player shot from here",
        responses={**NOT_STORED, **NO_CHAMPION},
    )
    def whatif(
        player_id: Annotated[int, Query(gt=0, le=MAX_ID)],
        x: Annotated[int, Query(ge=-250, le=250)],
        y: Annotated[int, Query(ge=-52, le=940)],
        game_id: Annotated[
            int | None, Query(gt=0, lt=NEW_GAME, description="default: a new game")
        ] = None,
        game_date: Annotated[
            int | None,
            Query(
                ge=19460101,
                le=21001231,
                description="YYYYMMDD; default: the game's date, or the player's latest",
            ),
        ] = None,
        period: Annotated[int, Query(ge=1, le=10)] = DEFAULT_PERIOD,
        minutes_remaining: Annotated[int, Query(ge=0, le=12)] = DEFAULT_MINUTES,
        seconds_remaining: Annotated[int, Query(ge=0, le=59)] = 0,
        season_type: Annotated[
            SeasonType | None, Query(description="default: the one the game id says")
        ] = None,
        action_type: Annotated[str | None, Query(min_length=1, max_length=80)] = None,
    ) -> Response:
        """The shot the NBA would record for this player at X/Y (zones, distance and shot type
        from the location) in the context given, and the champion's answer for it.

        The context is explicit and returned in ``context``: without ``game_id`` the shot is
        the first of a new game (no earlier shot in it) on the player's latest date, in the
        season type of the player's latest game; the clock defaults to period 1, 6:00 left.
        The player's form is as of that moment: only shots before it count, so a moment in
        the past never sees a later shot.  A clock the period does not have (12:30, or 7:00 of
        an overtime) or a date that is not a day is a 422 naming the field; a player or a game
        with no stored shot, without ``game_date``, is a 404.  POSTing the
        returned ``shot`` to ``/predict`` gives the same answer."""
        if game_date is not None and not _is_a_day(game_date):
            _refuse("game_date", f"{game_date} is not a date (YYYYMMDD)")
        latest = last_seen(player_id) or db[PREDICTIONS].find_one(
            {"player_id": player_id},
            sort=[("game_date", -1), ("scored_at", -1)],
            projection={"_id": 0},
        )
        game = None
        if game_id is not None:
            game = db[PREDICTIONS].find_one(
                {"game_id": game_id}, projection={"_id": 0, "game_date": 1}
            )
            if game is None and game_date is None:
                raise HTTPException(
                    404, detail=f"no stored shots of game {game_id}: pass game_date with it"
                )
        if latest is None and game is None and game_date is None:
            raise HTTPException(
                404,
                detail=f"no stored shots for player {player_id}: pass game_date to ask anyway",
            )
        latest, game = latest or {}, game or {}
        defaulted = [
            name
            for name, value in (
                ("game_id", game_id),
                ("game_date", game_date),
                ("season_type", season_type),
                ("action_type", action_type),
            )
            if value is None
        ]
        day = game_date or game.get("game_date") or latest.get("game_date")
        said_by = game_id or latest.get("game_id")
        season = season_type or (season_type_for(said_by) if said_by else "Regular Season")
        zone = zone_for(x, y)
        shot = {
            "game_id": game_id or NEW_GAME,
            "game_event_id": None,
            "player_id": player_id,
            "player_name": latest.get("player_name") or "",
            "team_id": latest.get("team_id") or 0,
            "team_name": latest.get("team_name") or "",
            "period": period,
            "minutes_remaining": minutes_remaining,
            "seconds_remaining": seconds_remaining,
            "action_type": action_type or ("Layup Shot" if zone.shot_distance < 4 else "Jump Shot"),
            **zone._asdict(),
            "x": x,
            "y": y,
            "game_date": day,
            "season_type": season,
        }
        shot["shot_id"] = shot_id_for(
            shot["game_id"],
            None,
            period=period,
            minutes_remaining=minutes_remaining,
            seconds_remaining=seconds_remaining,
            player_id=player_id,
            x=x,
            y=y,
        )
        try:
            parsed = parse_shot(shot, ("query",))
        except BadShot as error:
            raise RequestValidationError(error.errors) from None
        answer = score(holder.served, histories, [parsed])[0]
        context = {
            "game_id": game_id,
            "game": f"game {game_id}" if game_id else "a new game (no earlier shot in it)",
            "game_date": day,
            "period": period,
            "clock": f"{minutes_remaining}:{seconds_remaining:02d}",
            "season_type": season,
            "action_type": parsed["action_type"],
            "form_as_of": answer["form_history"],
            "defaulted": defaulted,
        }
        return json_response({"shot": parsed, "context": context, "prediction": answer})

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


def _is_a_day(yyyymmdd: int) -> bool:
    try:
        date(yyyymmdd // 10_000, yyyymmdd // 100 % 100, yyyymmdd % 100)
    except ValueError:
        return False
    return True


def _refuse(field: str, message: str) -> None:
    raise RequestValidationError([{"loc": ["query", field], "msg": message, "type": "value_error"}])
