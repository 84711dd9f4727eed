"""Teams and players by what a user types: an id, a full name, a nickname, a city, an abbreviation.

Teams are the 30 NBA franchises under their stats.nba.com team ids, with the names and
abbreviations they went by in the data here: the Kobe Bryant rows' Kaggle ``matchup`` codes
(SEA, NJN, VAN, NOH, PHO, SAN, UTH, ...) and the bulk file's old names (Seattle SuperSonics,
New Jersey Nets, Charlotte Bobcats, ...).  Players are whoever the store holds scored shots of,
read from ``predictions`` and kept for a short while.

Case, accents, dots and extra spaces do not count.  A name that matches nothing, or more than
one team or player, raises :class:`UnknownName` carrying the nearest names, so a user is told
what to type instead of getting nothing back.
"""

from __future__ import annotations

import difflib
import threading
import time
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["TEAMS", "Player", "PlayerDirectory", "Team", "UnknownName", "clip", "resolve_team"]

# What an error says of a value it was sent: never more than this much of it.
ECHO_CHARS = 80
# Team and player names are at most 34 characters: a longer text is compared by its start only,
# so a huge one costs no more than a name.
_COMPARED_CHARS = 60


def clip(value: Any, limit: int = ECHO_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters, so an error never echoes a large input."""
    text = value if isinstance(value, str) else repr(value)
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return repr(text) if isinstance(value, str) else text


class UnknownName(LookupError):
    """A team or player name that matches no one, or more than one.

    Attributes:
        kind: ``"team"`` or ``"player"``.
        nearest: the names closest to what was asked (every candidate when it was ambiguous).
    """

    def __init__(self, kind: str, asked: Any, nearest: list[str], *, ambiguous: bool = False):
        self.kind = kind
        self.nearest = nearest
        if ambiguous:
            message = f"{kind} {clip(asked)} could be {', '.join(nearest)}: name one of them"
        elif nearest:
            message = f"no {kind} named {clip(asked)}; nearest: {', '.join(nearest)}"
        else:
            message = f"no {kind} named {clip(asked)}"
        super().__init__(message)

    def __str__(self) -> str:  # LookupError would quote the message as KeyError does
        return str(self.args[0])


@dataclass(frozen=True)
class Team:
    """A franchise: its id, today's names, other current spellings and former names."""

    team_id: int
    abbreviation: str
    city: str
    nickname: str
    aliases: tuple[str, ...] = ()
    former: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.city} {self.nickname}"


@dataclass(frozen=True)
class Player:
    player_id: int
    name: str


TEAMS: tuple[Team, ...] = (
    Team(1610612737, "ATL", "Atlanta", "Hawks"),
    Team(1610612738, "BOS", "Boston", "Celtics"),
    Team(1610612739, "CLE", "Cleveland", "Cavaliers", aliases=("Cavs",)),
    Team(
        1610612740,
        "NOP",
        "New Orleans",
        "Pelicans",
        former=("NOH", "NOK", "New Orleans Hornets", "New Orleans/Oklahoma City Hornets"),
    ),
    Team(1610612741, "CHI", "Chicago", "Bulls"),
    Team(1610612742, "DAL", "Dallas", "Mavericks", aliases=("Mavs",)),
    Team(1610612743, "DEN", "Denver", "Nuggets"),
    Team(1610612744, "GSW", "Golden State", "Warriors"),
    Team(1610612745, "HOU", "Houston", "Rockets"),
    Team(1610612746, "LAC", "LA", "Clippers", aliases=("Los Angeles Clippers",)),
    Team(1610612747, "LAL", "Los Angeles", "Lakers"),
    Team(1610612748, "MIA", "Miami", "Heat"),
    Team(1610612749, "MIL", "Milwaukee", "Bucks"),
    Team(1610612750, "MIN", "Minnesota", "Timberwolves", aliases=("Wolves",)),
    Team(1610612751, "BKN", "Brooklyn", "Nets", former=("NJN", "New Jersey Nets", "New Jersey")),
    Team(1610612752, "NYK", "New York", "Knicks"),
    Team(1610612753, "ORL", "Orlando", "Magic"),
    Team(1610612754, "IND", "Indiana", "Pacers"),
    Team(1610612755, "PHI", "Philadelphia", "76ers", aliases=("Sixers",)),
    Team(1610612756, "PHX", "Phoenix", "Suns", former=("PHO",)),
    Team(1610612757, "POR", "Portland", "Trail Blazers", aliases=("Blazers",)),
    Team(1610612758, "SAC", "Sacramento", "Kings"),
    Team(1610612759, "SAS", "San Antonio", "Spurs", former=("SAN",)),
    Team(
        1610612760,
        "OKC",
        "Oklahoma City",
        "Thunder",
        former=("SEA", "Seattle SuperSonics", "Seattle", "SuperSonics", "Sonics"),
    ),
    Team(1610612761, "TOR", "Toronto", "Raptors"),
    Team(1610612762, "UTA", "Utah", "Jazz", former=("UTH",)),
    Team(
        1610612763,
        "MEM",
        "Memphis",
        "Grizzlies",
        former=("VAN", "Vancouver Grizzlies", "Vancouver"),
    ),
    Team(
        1610612764,
        "WAS",
        "Washington",
        "Wizards",
        former=("WSB", "Washington Bullets", "Bullets"),
    ),
    Team(1610612765, "DET", "Detroit", "Pistons"),
    # The old Charlotte Hornets' history (CHH, 1988-2002) went back to Charlotte in 2014.
    Team(1610612766, "CHA", "Charlotte", "Hornets", former=("CHH", "Charlotte Bobcats", "Bobcats")),
)


def normalize(text: str) -> str:
    """Case, accents, dots and runs of spaces removed: what two spellings of a name share."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.casefold().replace(".", "").split())


def _digits(value: Any) -> int | None:
    """The id in ``value`` (an int, or a string of ASCII digits), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    return int(text) if text.isascii() and text.isdigit() else None


def _index(entries: Iterable[tuple[str, int]]) -> dict[str, tuple[int, ...]]:
    index: dict[str, list[int]] = defaultdict(list)
    for text, key in entries:
        ids = index[normalize(text)]
        if key not in ids:
            ids.append(key)
    return {text: tuple(ids) for text, ids in index.items()}


_BY_ID = {team.team_id: team for team in TEAMS}
# Today's names win over former ones: "Hornets" is Charlotte, "NOH" still finds New Orleans.
_CURRENT = _index(
    (text, team.team_id)
    for team in TEAMS
    for text in (team.name, team.abbreviation, team.city, team.nickname, *team.aliases)
)
_FORMER = _index((text, team.team_id) for team in TEAMS for text in team.former)


def _lookup(
    kind: str,
    asked: Any,
    indexes: Iterable[dict[str, tuple[int, ...]]],
    display: Callable[[int], str],
) -> int:
    """The one id that ``asked`` names in the first index that knows it."""
    key = normalize(str(asked))
    for index in indexes:
        ids = index.get(key)
        if ids and len(ids) == 1:
            return ids[0]
        if ids:
            raise UnknownName(kind, asked, sorted(display(i) for i in ids), ambiguous=True)
    everything: dict[str, tuple[int, ...]] = {}
    for index in indexes:
        everything = {**index, **everything}
    nearest: list[str] = []
    for close in difflib.get_close_matches(key[:_COMPARED_CHARS], everything, n=8, cutoff=0.6):
        for found in everything[close]:
            if display(found) not in nearest:
                nearest.append(display(found))
    raise UnknownName(kind, asked, nearest[:5])


def resolve_team(asked: str | int) -> Team:
    """The team that ``asked`` names: an id, full name, nickname, city or abbreviation.

    Raises:
        UnknownName: no team, or more than one, goes by that name; ``nearest`` says which do.

    Example:
        >>> [resolve_team(t).team_id for t in ("Knicks", "knicks", "NYK", 1610612752)]
        [1610612752, 1610612752, 1610612752, 1610612752]
        >>> resolve_team("SEA").name
        'Oklahoma City Thunder'
        >>> resolve_team("Miami Heats")
        Traceback (most recent call last):
        ...
        consumers.api.names.UnknownName: no team named 'Miami Heats'; nearest: Miami Heat
    """
    team_id = _digits(asked)
    if team_id is not None:
        if team_id in _BY_ID:
            return _BY_ID[team_id]
        raise UnknownName("team", asked, [])
    return _BY_ID[_lookup("team", asked, (_CURRENT, _FORMER), lambda i: _BY_ID[i].name)]


_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv"})


def _last_name(name: str) -> str:
    words = normalize(name).split()
    while len(words) > 1 and words[-1].strip(",") in _SUFFIXES:
        words.pop()
    return words[-1].strip(",") if words else ""


class PlayerDirectory:
    """Players the store has scored shots of, looked up by id, full name or unique last name.

    The id -> name table is read from ``predictions`` when first needed and again once it is
    ``ttl_s`` old; a name it does not know reads it again first if it is over ``retry_s`` old,
    so a player whose first shot was just stored is found.

    Args:
        predictions: the ``predictions`` collection.
        ttl_s: how long the table is used before it is read again.
        retry_s: how old the table must be for a miss to read it again at once.
        clock: seconds, monotonic (for tests).
    """

    def __init__(
        self,
        predictions: Any,
        *,
        ttl_s: float = 60.0,
        retry_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.predictions = predictions
        self.ttl_s = ttl_s
        self.retry_s = retry_s
        self.clock = clock
        self._lock = threading.Lock()
        self._loaded_at: float | None = None
        self._names: dict[int, str] = {}
        self._by_name: dict[str, tuple[int, ...]] = {}
        self._by_last: dict[str, tuple[int, ...]] = {}

    def resolve(self, asked: str | int) -> Player:
        """The player that ``asked`` names (an id, a full name, or a last name only one has).

        Raises:
            UnknownName: no stored player, or more than one, goes by that name.
            pymongo.errors.PyMongoError: the store could not be read.
        """
        self._refresh(max_age=self.ttl_s)
        try:
            return self._find(asked)
        except UnknownName:
            if not self._refresh(max_age=self.retry_s):
                raise
        return self._find(asked)

    def _find(self, asked: str | int) -> Player:
        player_id = _digits(asked)
        if player_id is None:
            player_id = _lookup("player", asked, (self._by_name, self._by_last), self._names.get)
        elif player_id not in self._names:
            raise UnknownName("player", asked, [])
        return Player(player_id, self._names[player_id])

    def _refresh(self, *, max_age: float) -> bool:
        """Read the table again if it is older than ``max_age``; True when it was read."""
        with self._lock:
            now = self.clock()
            if self._loaded_at is not None and now - self._loaded_at < max_age:
                return False
            names = {
                doc["_id"]: doc["name"]
                for doc in self.predictions.aggregate(
                    [
                        {"$match": {"player_id": {"$type": "number"}}},
                        {"$group": {"_id": "$player_id", "name": {"$last": "$player_name"}}},
                    ]
                )
                if isinstance(doc.get("name"), str) and doc["name"]
            }
            self._names = names
            self._by_name = _index((name, pid) for pid, name in names.items())
            self._by_last = _index((_last_name(name), pid) for pid, name in names.items())
            self._loaded_at = now
            return True
