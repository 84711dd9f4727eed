"""What happened, from MongoDB: scored shots, a game, a player, the points-above-expectation board.

Everything reads ``predictions``, where the sink keeps each scored shot (with its team, date,
clock and X/Y) and, once joined, its outcome.  Points above expectation is what a shooter scored
minus what the champion expected of the same shots: ``sum(outcome x value) - sum(p x value)``.
"""

from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import Response

from consumers.api.history import PlayerHistories, game_order
from consumers.api.live import SCORED_FIELDS
from consumers.api.predict import json_response
from models.form import form_summary
from parivision.schemas import MAX_ID
from parivision.store import PREDICTIONS

# What a listed shot shows: the scored record and its outcome; the features stay in ``shots``.
SHOT_FIELDS = (*SCORED_FIELDS, "p_online", "outcome", "labelled_at")
_PROJECTION = {"_id": 0, **dict.fromkeys(SHOT_FIELDS, 1)}

Date = Annotated[int | None, Query(ge=19460101, le=21001231, description="YYYYMMDD game date")]


def team_filter(team: str) -> dict[str, Any]:
    """A team id (digits) or a team name, as the feed and the page know it."""
    team = team.strip()
    if team.isascii() and team.isdigit() and int(team) <= MAX_ID:
        return {"team_id": int(team)}
    return {"team_name": team}


def _encode_cursor(doc: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([doc["scored_at"], doc["shot_id"]])).decode()


def _decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        scored_at, shot_id = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
        return float(scored_at), str(shot_id)
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
        raise HTTPException(
            422,
            detail=[
                {
                    "loc": ["query", "cursor"],
                    "msg": "not a cursor this API gave out (pass next_cursor back as it is)",
                    "type": "value_error",
                }
            ],
        ) from None


def _points(docs: list[dict[str, Any]]) -> dict[str, Any]:
    labelled = [d for d in docs if d.get("outcome") is not None and d.get("shot_value")]
    points = sum(d["outcome"] * d["shot_value"] for d in labelled)
    expected = sum(d["p_champion"] * d["shot_value"] for d in labelled)
    return {
        "shots": len(docs),
        "labelled": len(labelled),
        "made": sum(d["outcome"] for d in labelled),
        "points": points,
        "expected_points": expected,
        "points_above_expectation": points - expected,
    }


def router(db, histories: PlayerHistories) -> APIRouter:
    api = APIRouter(tags=["history"])
    predictions = db[PREDICTIONS]

    @api.get("/shots", summary="Recent scored shots")
    def shots(
        game_id: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
        player_id: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
        team: Annotated[str | None, Query(min_length=1, max_length=80)] = None,
        date: Date = None,
        date_from: Date = None,
        date_to: Date = None,
        made: Annotated[int | None, Query(ge=0, le=1)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        cursor: Annotated[str | None, Query(max_length=400)] = None,
    ) -> Response:
        """Newest scored first; ``next_cursor`` (null on the last page) fetches the next page."""
        query: dict[str, Any] = {}
        if game_id is not None:
            query["game_id"] = game_id
        if player_id is not None:
            query["player_id"] = player_id
        if team is not None:
            query.update(team_filter(team))
        if date is not None:
            query["game_date"] = date
        elif date_from is not None or date_to is not None:
            query["game_date"] = {
                **({"$gte": date_from} if date_from is not None else {}),
                **({"$lte": date_to} if date_to is not None else {}),
            }
        if made is not None:
            query["outcome"] = made
        if cursor is not None:
            scored_at, shot_id = _decode_cursor(cursor)
            query["$or"] = [
                {"scored_at": {"$lt": scored_at}},
                {"scored_at": scored_at, "shot_id": {"$lt": shot_id}},
            ]
        docs = list(
            predictions.find(query, _PROJECTION)
            .sort([("scored_at", -1), ("shot_id", -1)])
            .limit(limit + 1)
        )
        page = docs[:limit]
        more = len(docs) > limit
        return json_response(
            {"shots": page, "next_cursor": _encode_cursor(page[-1]) if more else None}
        )

    @api.get("/games/{game_id}", summary="A game's shots in order")
    def game(game_id: Annotated[int, Path(gt=0, le=MAX_ID)]) -> Response:
        """Every stored shot of the game in game order, with probability and outcome, and
        points against expectation by team."""
        docs = list(predictions.find({"game_id": game_id}, _PROJECTION))
        if not docs:
            raise HTTPException(404, detail=f"no stored shots for game {game_id}")
        docs.sort(key=lambda d: game_order(_orderable(d)))
        teams: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for doc in docs:
            teams[(doc.get("team_id"), doc.get("team_name"))].append(doc)
        return json_response(
            {
                "game_id": game_id,
                "game_date": docs[0].get("game_date"),
                "summary": {
                    **_points(docs),
                    "teams": [
                        {"team_id": tid, "team_name": name, **_points(team_docs)}
                        for (tid, name), team_docs in teams.items()
                    ],
                },
                "shots": docs,
            }
        )

    @api.get("/players/{player_id}", summary="A player's form and points against expectation")
    def player(player_id: Annotated[int, Path(gt=0, le=MAX_ID)]) -> Response:
        """Form now (from the stored history, as ``/predict`` computes it) and expected against
        actual points over every stored shot of the player."""
        docs = list(
            predictions.find(
                {"player_id": player_id},
                {
                    "_id": 0,
                    "player_name": 1,
                    "team_id": 1,
                    "team_name": 1,
                    "outcome": 1,
                    "p_champion": 1,
                    "shot_value": 1,
                    "scored_at": 1,
                },
            )
        )
        if not docs:
            raise HTTPException(404, detail=f"no stored shots for player {player_id}")
        latest = max(docs, key=lambda d: d.get("scored_at") or 0)
        history = histories.get_many([player_id])[player_id]
        _state, used = history.form_state(None)
        return json_response(
            {
                "player_id": player_id,
                "player_name": latest.get("player_name"),
                "team_id": latest.get("team_id"),
                "team_name": latest.get("team_name"),
                **_points(docs),
                "form": form_summary(history.state),
                "form_history": used,
            }
        )

    @api.get("/leaderboard", summary="Points above expectation, by player or team")
    def leaderboard(
        by: Annotated[Literal["player", "team"], Query()] = "player",
        game_id: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
        replay_id: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 20,
    ) -> Response:
        """Actual minus expected points over labelled shots, best first."""
        query: dict[str, Any] = {"outcome": {"$exists": True}, "shot_value": {"$exists": True}}
        if game_id is not None:
            query["game_id"] = game_id
        if replay_id is not None:
            query["replay_id"] = replay_id
        fields = ("player_id", "player_name", "team_id", "team_name")
        docs = predictions.find(
            query,
            {"_id": 0, "outcome": 1, "p_champion": 1, "shot_value": 1, **dict.fromkeys(fields, 1)},
        )
        rows: dict[Any, dict[str, Any]] = {}
        for doc in docs:
            key = doc.get("player_id") if by == "player" else doc.get("team_id")
            row = rows.get(key)
            if row is None:
                row = rows[key] = {
                    "id": key,
                    "name": doc.get("player_name") if by == "player" else doc.get("team_name"),
                    "team_name": doc.get("team_name"),
                    "shots": 0,
                    "made": 0,
                    "points": 0,
                    "expected_points": 0.0,
                }
            row["shots"] += 1
            row["made"] += doc["outcome"]
            row["points"] += doc["outcome"] * doc["shot_value"]
            row["expected_points"] += doc["p_champion"] * doc["shot_value"]
        for row in rows.values():
            row["points_above_expectation"] = row["points"] - row["expected_points"]
        ranked = sorted(rows.values(), key=lambda r: r["points_above_expectation"], reverse=True)
        return json_response({"by": by, "rows": ranked[:limit], "groups": len(ranked)})

    return api


def _orderable(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "game_date": doc.get("game_date"),
        "game_id": doc.get("game_id"),
        "game_event_id": doc.get("game_event_id"),
        "period": doc.get("period") or 0,
        "minutes_remaining": doc.get("minutes_remaining") or 0,
        "seconds_remaining": doc.get("seconds_remaining") or 0,
    }
