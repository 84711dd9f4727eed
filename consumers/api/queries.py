"""What happened, from MongoDB: scored shots, a game, a player, the points-above-expectation board.

Everything reads ``predictions``, where the sink keeps each scored shot (with its team, date,
clock and X/Y) and, once joined, its outcome.  Points above expectation is what a shooter scored
minus what the champion expected of the same shots: ``sum(outcome x value) - sum(p x value)``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import Response

from consumers.api import leaderboard
from consumers.api.history import PlayerHistories, game_order
from consumers.api.live_feed import SCORED_FIELDS
from consumers.api.names import PlayerDirectory, clip, resolve_team
from consumers.api.predict import json_response
from consumers.api.responses import NOT_STORED, UNAVAILABLE, UNKNOWN_NAME, unprocessable
from models.form import form_summary
from parivision.schemas import MAX_ID
from parivision.store import SCORED, SHOTS

# What a listed shot shows: the scored record and its outcome; the features stay in ``shots``.
SHOT_FIELDS = (*SCORED_FIELDS, "p_online", "outcome", "labelled_at")
_PROJECTION = {"_id": 0, **dict.fromkeys(SHOT_FIELDS, 1)}

Date = Annotated[int | None, Query(ge=19460101, le=21001231, description="YYYYMMDD game date")]


def team_filter(team: str) -> dict[str, Any]:
    """The query for a team given by id, full name, nickname, city or abbreviation, old ones too.

    Raises:
        UnknownName: no team goes by ``team`` (the app answers 404 with the nearest names).
    """
    return {"team_id": resolve_team(team).team_id}


def player_filter(player: str, players: PlayerDirectory) -> dict[str, Any]:
    """The query for a stored player given by id, full name or a last name only one has.

    Raises:
        UnknownName: no stored player goes by ``player`` (404 with the nearest names).
    """
    return {"player_id": players.resolve(player).player_id}


# A page ends at a shot; the next starts after it: ``{scored_at}~{shot_id}``, the position in
# the (scored_at, shot_id) order, exact (``repr`` of the float).  Every text of this form is a
# position, so the schema's pattern is the whole rule.
CURSOR_PATTERN = r"^(?:0|[1-9][0-9]{0,11})(?:\.[0-9]{1,17})?~[\s\S]{1,128}$"
Cursor = Annotated[
    str | None,
    Query(
        max_length=160,
        pattern=CURSOR_PATTERN,
        description="the `next_cursor` of the page before, passed back as it is",
    ),
]


def _encode_cursor(doc: dict[str, Any]) -> str:
    return f"{float(doc['scored_at'])!r}~{doc['shot_id']}"


def _decode_cursor(cursor: str) -> tuple[float, str]:
    scored_at, shot_id = cursor.split("~", 1)  # the pattern was checked: both are there
    return float(scored_at), shot_id


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


def _field_goal_points(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """:func:`_points` with its points named for what they are: field goals only, no free
    throws (what ``/games/{game_id}`` answers)."""
    summary = _points(docs)
    summary["field_goal_points"] = summary.pop("points")
    summary["expected_field_goal_points"] = summary.pop("expected_points")
    return summary


def router(db, histories: PlayerHistories, players: PlayerDirectory | None = None) -> APIRouter:
    api = APIRouter(tags=["history"])
    predictions = db[SHOTS]
    players = players if players is not None else PlayerDirectory(predictions)

    @api.get("/shots", summary="Recent scored shots", responses={**UNKNOWN_NAME, **UNAVAILABLE})
    def shots(
        game_id: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
        player_id: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
        player: Annotated[str | None, Query(min_length=1, max_length=80)] = None,
        team: Annotated[str | None, Query(min_length=1, max_length=80)] = None,
        date: Date = None,
        date_from: Date = None,
        date_to: Date = None,
        made: Annotated[int | None, Query(ge=0, le=1)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        cursor: Cursor = None,
    ) -> Response:
        """Newest scored first; ``next_cursor`` (null on the last page) fetches the next page.
        ``team`` and ``player`` take names as well as ids; an unknown one is 404 with the
        nearest names."""
        query: dict[str, Any] = dict(SCORED)
        if game_id is not None:
            query["game_id"] = game_id
        if player_id is not None:
            query["player_id"] = player_id
        if player is not None:
            named = player_filter(player, players)["player_id"]
            if player_id is not None and named != player_id:
                msg = f"player {clip(player)} is player {named}, not player_id {player_id}"
                raise unprocessable("player", msg)
            query["player_id"] = named
        if team is not None:
            query.update(team_filter(team))
        if date is not None and (date_from is not None or date_to is not None):
            raise unprocessable("date", "give a date or a range (date_from, date_to), not both")
        if date_from is not None and date_to is not None and date_from > date_to:
            raise unprocessable("date_from", f"date_from {date_from} is after date_to {date_to}")
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

    @api.get(
        "/games/{game_id}",
        summary="A game's shots in order",
        responses={**NOT_STORED, **UNAVAILABLE},
    )
    def game(game_id: Annotated[int, Path(gt=0, le=MAX_ID)]) -> Response:
        """Every stored shot of the game in game order, with probability and outcome, and
        field-goal points (``field_goal_points``, ``expected_field_goal_points``) against
        expectation, for the game and by team."""
        docs = list(predictions.find({"game_id": game_id, **SCORED}, _PROJECTION))
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
                    **_field_goal_points(docs),
                    "teams": [
                        {"team_id": tid, "team_name": name, **_field_goal_points(team_docs)}
                        for (tid, name), team_docs in teams.items()
                    ],
                },
                "shots": docs,
            }
        )

    @api.get(
        "/players/{player_id}",
        summary="A player's form and points against expectation",
        responses={**NOT_STORED, **UNAVAILABLE},
    )
    def player(player_id: Annotated[int, Path(gt=0, le=MAX_ID)]) -> Response:
        """Form now (from the stored history, as ``/predict`` computes it) and expected against
        actual points over every stored shot of the player."""
        docs = list(
            predictions.find(
                {"player_id": player_id, **SCORED},
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
        _state, used = history.form_state({})
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

    @api.get(
        "/leaderboard",
        summary="Points above expectation per shot, by player or team",
        responses={**UNKNOWN_NAME, **UNAVAILABLE},
        description=(
            "Field-goal points made minus the points the champion expected of the same labelled "
            "shots, per shot, ranked by a shrunk per-shot value: `shrunk_per_shot = "
            "sum(points - expected) / (attempts + prior_shots)`, i.e. each row starts with "
            "`prior_shots` shots at the league's value (0 above expectation). The default of "
            f"{leaderboard.DEFAULT_PRIOR_SHOTS} is about the noise of one shot over the spread of "
            "players' true per-shot values, (1.1 / 0.1)^2 ~ 120. Rows with fewer than `min_shots` "
            "attempts are left out (counted in `below_min_shots`). `season` (2018-19: game dates "
            "20180701 to 20190630), `since` and `until` (YYYYMMDD, included) narrow the dates; "
            "`order=worst` lists the lowest first."
        ),
    )
    def leaderboard_route(
        by: Annotated[Literal["player", "team"], Query()] = "player",
        order: Annotated[Literal["best", "worst"], Query()] = "best",
        game_id: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
        team: Annotated[str | None, Query(min_length=1, max_length=80)] = None,
        player_id: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
        season: Annotated[
            str | None, Query(pattern=leaderboard.SEASON_PATTERN, examples=["2018-19"])
        ] = None,
        since: Date = None,
        until: Date = None,
        replay_id: Annotated[str | None, Query(max_length=64)] = None,
        min_shots: Annotated[
            int, Query(ge=1, le=1_000_000, description="fewest attempts a row needs")
        ] = leaderboard.DEFAULT_MIN_SHOTS,
        prior_shots: Annotated[
            int, Query(ge=0, le=100_000, description="shots of shrinkage toward 0")
        ] = leaderboard.DEFAULT_PRIOR_SHOTS,
        limit: Annotated[int, Query(ge=1, le=500)] = 20,
    ) -> Response:
        """Labelled shots by player or team, ranked by shrunk points above expectation per shot
        (see :mod:`consumers.api.leaderboard` for the prior and an example)."""
        query: dict[str, Any] = dict(SCORED)
        if game_id is not None:
            query["game_id"] = game_id
        if team is not None:
            query.update(team_filter(team))
        if player_id is not None:
            query["player_id"] = player_id
        dates = leaderboard.date_range(season, since, until)
        if dates is not None:
            query["game_date"] = dates
        if replay_id is not None:
            query["replay_id"] = replay_id
        return json_response(
            leaderboard.board(
                predictions,
                by=by,
                query=query,
                prior_shots=prior_shots,
                min_shots=min_shots,
                order=order,
                limit=limit,
            )
        )

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
