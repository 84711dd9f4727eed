"""Which feed messages a WebSocket client (or ``GET /live/recent``) wants: a :class:`Filter`.

Teams and players in a filter are looked up by name (:mod:`consumers.api.names`): one that
matches nothing is answered with an error naming the nearest ones, never silently accepted.
"""

from __future__ import annotations

from typing import Any

from consumers.api.names import PlayerDirectory, clip, resolve_team


class Filter:
    """Which messages a client wants: any of game, player, team; empty is all.

    ``team`` is a team id or name (full name, nickname, city, abbreviation); ``player`` a
    player id or name, looked up in ``players``; ``player_id`` an id taken as it is (the player
    may not have shot yet).

    Raises:
        ValueError: the spec is not a filter; the message says what to send.
        UnknownName: a team or player name matches no one (or more than one).
    """

    FIELDS = ("game_id", "player_id", "player", "team")

    def __init__(self, spec: Any = None, players: PlayerDirectory | None = None) -> None:
        spec = {} if spec is None else spec
        if not isinstance(spec, dict):
            raise ValueError('a filter is an object such as {"game_id": 22000001}')
        unknown = set(spec) - set(self.FIELDS)
        if unknown:
            shown = ", ".join(clip(field, 20) for field in sorted(unknown)[:5])
            raise ValueError(f"unknown filter field(s) {shown}: use {', '.join(self.FIELDS)}")
        self.game_id = _optional_int(spec, "game_id")
        self.player_id = _optional_int(spec, "player_id")
        self.player_name: str | None = None
        player = spec.get("player")
        if player is not None:
            if isinstance(player, bool) or not isinstance(player, (int, str)):
                raise ValueError("player is a player id or a player name")
            if players is None:
                raise ValueError("player names are not looked up here: use player_id")
            found = players.resolve(player)
            if self.player_id is not None and self.player_id != found.player_id:
                raise ValueError(
                    f"player {clip(player)} is player_id {found.player_id}, not {self.player_id}"
                )
            self.player_id, self.player_name = found.player_id, found.name
        team = spec.get("team")
        self.team_id: int | None = None
        self.team_name: str | None = None  # set when the team was given by name
        if team is not None:
            if isinstance(team, bool) or not isinstance(team, (int, str)):
                raise ValueError("team is a team id or a team name")
            found_team = resolve_team(team)
            self.team_id = found_team.team_id
            numeric = isinstance(team, int) or (team.isascii() and team.strip().isdigit())
            self.team_name = None if numeric else found_team.name

    def matches(self, message: dict[str, Any]) -> bool:
        return (
            (self.game_id is None or message.get("game_id") == self.game_id)
            and (self.player_id is None or message.get("player_id") == self.player_id)
            and (self.team_id is None or message.get("team_id") == self.team_id)
        )

    def as_dict(self) -> dict[str, Any]:
        """The filter as applied: names as the data spells them, ids as given."""
        spec = {
            "game_id": self.game_id,
            "player_id": self.player_id,
            "player": self.player_name,
            "team": self.team_name or self.team_id,
        }
        return {k: v for k, v in spec.items() if v is not None}


def _optional_int(spec: dict[str, Any], name: str) -> int | None:
    value = spec.get(name)
    if value is None:
        return None
    text = str(value)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, str))
        or not text.isascii()
        or not text.isdigit()
    ):
        raise ValueError(f"{name} must be a positive integer, not {clip(value)}")
    return int(value)
