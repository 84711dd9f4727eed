"""``GET /whatif``: what a player's shot from a spot of the court is worth, at a stated moment.

The shot is the one the NBA would record at X/Y (zones, distance and shot type from the
location), in a context that is explicit and returned (``context``): the game (default: a new
one, with no earlier shot of the player in it), its date, period, clock and season type.  The
player's form is as of that moment (:meth:`consumers.api.history.History.form_state`).
Without an ``action_type`` the shot is priced over the player's mix of actions from that zone
(:mod:`consumers.api.whatif_mix`), which is what "what if he shot from here" asks.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from consumers.api.history import PlayerHistories
from consumers.api.predict import json_response, score
from consumers.api.responses import NO_CHAMPION, NOT_STORED
from consumers.api.serving import ModelHolder
from consumers.api.shots_in import BadShot, parse_shot
from consumers.api.whatif_mix import ActionMixes, price_mix
from models.inputs import generic_action, season_type_for
from parivision.court import zone_for
from parivision.schemas import MAX_ID, shot_id_for
from parivision.store import SCORED, SHOTS

# The what-if's game when none is given: a new game, an id no NBA game has (they are 8 digits).
NEW_GAME = MAX_ID
DEFAULT_PERIOD, DEFAULT_MINUTES = 1, 6
SeasonType = Literal["Regular Season", "Playoffs", "Pre Season", "PlayIn", "All Star"]


def router(
    holder: ModelHolder,
    histories: PlayerHistories,
    db,
    last_seen: Callable[[int], dict[str, Any] | None] = lambda player_id: None,
) -> APIRouter:
    """The what-if route; ``last_seen(player_id)`` is the player's latest shot on the live
    feed, for a player the sink has not stored yet."""
    api = APIRouter(tags=["predict"])
    mixes = ActionMixes(db)

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
        with no stored shot, without ``game_date``, is a 404.

        Without ``action_type`` the answer is over the player's mix of actions from that zone
        (the league's when he has fewer than 20 stored shots there): each action's answer
        weighed by its share, listed in ``prediction.action_mix``; ``shot`` is then the most
        frequent action's.  POSTing ``shot`` to ``/predict`` gives that action's answer, and
        with ``action_type`` given, the same answer."""
        if game_date is not None and not _is_a_day(game_date):
            _refuse("game_date", f"{game_date} is not a date (YYYYMMDD)")
        latest = last_seen(player_id) or db[SHOTS].find_one(
            {"player_id": player_id, **SCORED},
            sort=[("game_date", -1), ("scored_at", -1)],
            projection={"_id": 0, "raw": 0, "features": 0},
        )
        game = None
        if game_id is not None:
            game = db[SHOTS].find_one({"game_id": game_id}, projection={"_id": 0, "game_date": 1})
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
        # No action given: the player's mix of actions from this zone (the league's when he
        # has few shots there); a generic one when the store has none from there.
        mix, whose = [], "given"
        if action_type is None:
            mix, whose = mixes.mix(player_id, zone.shot_zone_basic)
        if action_type is None:
            action_type = mix[0][0] if mix else generic_action(zone.shot_distance)
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
            "action_type": action_type,
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
        if mix:
            answer = price_mix(
                lambda shots: score(holder.served, histories, shots), parsed, mix, whose
            )
        else:
            answer = score(holder.served, histories, [parsed])[0]
        context = {
            "game_id": game_id,
            "game": f"game {game_id}" if game_id else "a new game (no earlier shot in it)",
            "game_date": day,
            "period": period,
            "clock": f"{minutes_remaining}:{seconds_remaining:02d}",
            "season_type": season,
            "action_type": (
                f"the {whose}'s mix from the {zone.shot_zone_basic} "
                f"({sum(n for _, n in mix):,} shots)"
                if mix
                else parsed["action_type"]
            ),
            "form_as_of": answer["form_history"],
            "defaulted": defaulted,
        }
        return json_response({"shot": parsed, "context": context, "prediction": answer})

    return api


def _is_a_day(yyyymmdd: int) -> bool:
    try:
        date(yyyymmdd // 10_000, yyyymmdd // 100 % 100, yyyymmdd % 100)
    except ValueError:
        return False
    return True


def _refuse(field: str, message: str) -> None:
    raise RequestValidationError([{"loc": ["query", field], "msg": message, "type": "value_error"}])
