"""Synthetic live games whose shots look like real NBA ones, for demos and tests without data.

Zone shares, action types per zone and make rates per zone and action come from the real data
(:mod:`parivision.sources.synthetic_tables`); locations are drawn per zone and their zones, shot
type and distance are then computed by :func:`parivision.court.zone_for`, so X/Y and the zone
fields always agree the way the NBA's would.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from itertools import accumulate
from typing import Any

from parivision.court import Zone, zone_for
from parivision.schemas import shot_id_for
from parivision.sources.base import BadRow, Source, SourceShot
from parivision.sources.synthetic_tables import (
    ACTIONS,
    ANGLE_QUANTILES,
    DISTANCE_QUANTILES,
    OVERTIME_SHARE,
    PLAYERS_PER_TEAM_GAME,
    SHOTS_PER_GAME,
    TEAMS,
    ZONE_SHARES,
)

__all__ = ["SyntheticSource"]

# Fictional season 2029-30 by default: ids and dates that no real data set here can contain.
DEFAULT_START_GAME_ID = 22900001
DEFAULT_START_DATE = date(2029, 10, 23)
# Synthetic players get ids far above any real one, so no model confuses them with real players.
_PLAYER_ID_BASE = 9_000_000
_ROSTER_SIZE = 13
_SKILL_SD = 0.2  # per-player logit offset: players differ, league make rates stay put

_ZONES = tuple(ZONE_SHARES)
_ZONE_CUM = tuple(accumulate(ZONE_SHARES.values()))
_ACTION_NAMES = {zone: tuple(a for a, _, _ in rows) for zone, rows in ACTIONS.items()}
_ACTION_CUM = {zone: tuple(accumulate(s for _, s, _ in rows)) for zone, rows in ACTIONS.items()}
_ACTION_LOGIT = {
    zone: {a: math.log(rate / (1 - rate)) for a, _, rate in rows} for zone, rows in ACTIONS.items()
}
# Made-up names: synthetic players must not pass for real ones.
# fmt: off
_FIRST = (
    "Marcus", "Tyrese", "Jalen", "Andre", "Darius", "Kendall", "Malik", "Trey", "Devin",
    "Isaiah", "Jordan", "Cameron", "Elijah", "Xavier", "Terrence", "Dante", "Quentin", "Rashad",
    "Nikola", "Luka", "Evan", "Caleb", "Mason", "Owen"
)
_LAST = (
    "Holloway", "Brennan", "Okafor", "Castillo", "Whitfield", "Danner", "Ruiz", "Mbeki",
    "Lindqvist", "Carver", "Hayes", "Pruitt", "Saunders", "Abernathy", "Kowalski", "Delacroix",
    "Fontaine", "Greer", "Ibarra", "Jessup", "Kessler", "Lattimore", "Moreau", "Nakamura",
    "Oyelaran", "Petrovic", "Quarles", "Renner", "Stroud", "Tolliver"
)
# fmt: on


@dataclass(frozen=True, slots=True)
class _Player:
    player_id: int
    name: str
    weight: float  # share of the team's attempts
    skill: float  # logit offset on every make rate


@dataclass(frozen=True, slots=True)
class _Team:
    team_id: int
    name: str
    abbreviation: str
    roster: tuple[_Player, ...]


class SyntheticSource(Source):
    """Games played one after another, shots in clock order, outcome known (``made``).

    Each game has two of the 30 teams, about 178 attempts (as in 2018-19), 7 to 13 players per
    team in the rotation, four 12-minute periods (5.4% of games add 5-minute overtimes) and game
    event ids increasing through the game.  Several games share a date, each team at most once
    per date, and dates move forward.  Rosters (ids, names, skill) are the same for every seed,
    so a model can learn the synthetic players across runs; the seed drives the games.

    Args:
        games: Number of games to play.
        seed: Seed for the games; the same seed gives the same shots, each time it is iterated.
        start_game_id: Game id of the first game; the next games count up from it.
        limit: Stop after this many shots; ``None`` plays every game to the end.
        start_date: Date of the first game.

    Example:
        >>> shots = [item.shot for item in SyntheticSource(games=1, seed=7)]
        >>> len(shots) > 100, shots[0]["game_id"], shots[0]["period"]
        (True, 22900001, 1)
    """

    def __init__(
        self,
        games: int = 10,
        seed: int = 0,
        start_game_id: int = DEFAULT_START_GAME_ID,
        limit: int | None = None,
        start_date: date = DEFAULT_START_DATE,
    ) -> None:
        if games < 0 or (limit is not None and limit < 0):
            raise ValueError(f"games and limit must be 0 or more, got {games} and {limit}")
        if start_game_id < 1:
            raise ValueError(f"start_game_id must be positive, got {start_game_id}")
        self.games = games
        self.seed = seed
        self.start_game_id = start_game_id
        self.limit = limit
        self.start_date = start_date
        self.name = f"synthetic:seed={seed}"

    def __iter__(self) -> Iterator[SourceShot | BadRow]:
        rng = random.Random(self.seed)
        teams = _league()
        sent = 0
        for game_id, day, home, away in self._schedule(rng, teams):
            for shot, made in _play(rng, game_id, day, home, away):
                if self.limit is not None and sent >= self.limit:
                    return
                sent += 1
                yield SourceShot(shot, made)

    def _schedule(
        self, rng: random.Random, teams: tuple[_Team, ...]
    ) -> Iterator[tuple[int, date, _Team, _Team]]:
        day, played = self.start_date, 0
        while played < self.games:
            order = rng.sample(teams, len(teams))  # each team plays at most once a day
            for i in range(min(rng.randint(4, 10), self.games - played)):
                yield self.start_game_id + played, day, order[2 * i], order[2 * i + 1]
                played += 1
            day += timedelta(days=1)


def _play(
    rng: random.Random, game_id: int, day: date, home: _Team, away: _Team
) -> Iterator[tuple[dict[str, Any], int]]:
    """One game's shots in clock order, with their outcomes."""
    periods = 4
    if rng.random() < OVERTIME_SHARE:
        periods += 1 if rng.random() < 0.85 else 2  # about one overtime game in seven goes twice
    lengths = [720 if p <= 4 else 300 for p in range(1, periods + 1)]
    count = max(120, round(rng.gauss(*SHOTS_PER_GAME)) + 18 * (periods - 4))
    # Attempts spread over the game like the clock does; elapsed >= 1 so 12:00 never shows.
    moments = sorted(
        (p, rng.randint(1, lengths[p - 1] - 1))
        for p in rng.choices(range(1, periods + 1), weights=lengths, k=count)
    )
    sides = [_active(rng, home), _active(rng, away)]
    event = rng.randint(2, 8)
    for period, elapsed in moments:
        event += rng.randint(1, 4)  # fouls, rebounds, turnovers come between attempts
        team, active, cum_weights = sides[rng.random() < 0.5]
        player = rng.choices(active, cum_weights=cum_weights)[0]
        zone = rng.choices(_ZONES, cum_weights=_ZONE_CUM)[0]
        x, y, where = _locate(rng, zone)
        action = rng.choices(_ACTION_NAMES[zone], cum_weights=_ACTION_CUM[zone])[0]
        logit = _ACTION_LOGIT[zone][action] + player.skill
        made = int(rng.random() < 1.0 / (1.0 + math.exp(-logit)))
        remaining = lengths[period - 1] - elapsed
        shot = {
            "shot_id": shot_id_for(game_id, event),
            "game_id": game_id,
            "game_event_id": event,
            "player_id": player.player_id,
            "player_name": player.name,
            "team_id": team.team_id,
            "team_name": team.name,
            "period": period,
            "minutes_remaining": remaining // 60,
            "seconds_remaining": remaining % 60,
            "action_type": action,
            "shot_type": where.shot_type,
            "shot_zone_basic": where.shot_zone_basic,
            "shot_zone_area": where.shot_zone_area,
            "shot_zone_range": where.shot_zone_range,
            "shot_distance": where.shot_distance,
            "x": x,
            "y": y,
            "game_date": int(day.strftime("%Y%m%d")),
            "home_team": home.abbreviation,
            "away_team": away.abbreviation,
            "season_type": "Regular Season",
        }
        yield shot, made


def _active(rng: random.Random, team: _Team) -> tuple[_Team, list[_Player], list[float]]:
    """The team, its players who take a shot tonight (the rotation) and their weights."""
    low, high = PLAYERS_PER_TEAM_GAME
    size = min(high, max(low, round(rng.gauss(10.2, 1.2))))
    active = list(team.roster[:size])
    return team, active, list(accumulate(p.weight for p in active))


def _locate(rng: random.Random, zone: str) -> tuple[int, int, Zone]:
    """A location in ``zone`` and its zone fields; distance and angle from real quantiles."""
    for _ in range(1000):
        r = _from_quantiles(rng, DISTANCE_QUANTILES[zone])
        angle = math.radians(_from_quantiles(rng, ANGLE_QUANTILES[zone]))
        x, y = round(r * math.sin(angle)), round(r * math.cos(angle))
        # Distance and angle are drawn apart, so some pairs land in a neighbouring zone (or
        # off the court): draw again rather than mislabel the shot.
        if -250 <= x <= 250 and -52 <= y <= 940:
            where = zone_for(x, y)
            if where.shot_zone_basic == zone:
                return x, y, where
    raise RuntimeError(f"could not place a shot in {zone!r}; the quantile tables are wrong")


def _from_quantiles(rng: random.Random, quantiles: tuple[int, ...]) -> float:
    """Inverse-CDF draw, linear between the tabulated percentiles."""
    position = rng.random() * (len(quantiles) - 1)
    i = int(position)
    low, high = quantiles[i], quantiles[min(i + 1, len(quantiles) - 1)]
    return low + (high - low) * (position - i)


@cache
def _league() -> tuple[_Team, ...]:
    """The 30 teams with fixed synthetic rosters (independent of the game seed)."""
    rng = random.Random("parivision-synthetic-league")
    names = rng.sample([f"{f} {last}" for f in _FIRST for last in _LAST], len(TEAMS) * _ROSTER_SIZE)
    teams = []
    for t, (team_id, team_name, abbreviation) in enumerate(TEAMS):
        # Shot volume falls off down the bench, as it does in a real rotation.
        weights = sorted((rng.gammavariate(2.0, 1.0) for _ in range(_ROSTER_SIZE)), reverse=True)
        roster = tuple(
            _Player(
                player_id=_PLAYER_ID_BASE + 100 * t + k,
                name=names[t * _ROSTER_SIZE + k],
                weight=weights[k],
                skill=rng.gauss(0.0, _SKILL_SD),
            )
            for k in range(_ROSTER_SIZE)
        )
        teams.append(_Team(team_id, team_name, abbreviation, roster))
    return tuple(teams)
