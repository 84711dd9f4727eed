"""Team and player lookup by what a user types (``consumers.api.names``).

Team names are checked against the real data's own pairs of id and name, and against the
teams of the Kobe rows' old ``matchup`` abbreviations; players against a fake store.
"""

from __future__ import annotations

import csv
from collections import defaultdict

import pytest

from consumers.api.names import TEAMS, PlayerDirectory, UnknownName, resolve_team
from parivision.sources.synthetic_tables import TEAMS as SYNTHETIC_TEAMS
from tests.conftest import shared_file

KNICKS = 1610612752


@pytest.mark.parametrize(
    "asked",
    ["Knicks", "knicks", "KNICKS", "NYK", "nyk", "New York Knicks", " new  york knicks ",
     "New York", KNICKS, str(KNICKS)],
)  # fmt: skip
def test_every_way_of_naming_the_knicks_gives_their_id(asked) -> None:
    team = resolve_team(asked)
    assert team.team_id == KNICKS and team.name == "New York Knicks"


@pytest.mark.parametrize(
    ("asked", "team_id"),
    [
        # The Kobe rows' Kaggle matchup codes.
        ("SEA", 1610612760),
        ("NJN", 1610612751),
        ("VAN", 1610612763),
        ("NOH", 1610612740),
        ("NOK", 1610612740),
        ("PHO", 1610612756),
        ("SAN", 1610612759),
        ("UTH", 1610612762),
        ("CHH", 1610612766),
        # The bulk file's former team names, under the ids it gives them.
        ("Seattle SuperSonics", 1610612760),
        ("New Jersey Nets", 1610612751),
        ("New Orleans/Oklahoma City Hornets", 1610612740),
        ("New Orleans Hornets", 1610612740),
        ("Charlotte Bobcats", 1610612766),
        ("Los Angeles Clippers", 1610612746),
        # Today's names win over former ones.
        ("Hornets", 1610612766),
        ("Sixers", 1610612755),
        ("trail blazers", 1610612757),
    ],
)
def test_old_abbreviations_and_names_find_the_franchise(asked, team_id) -> None:
    assert resolve_team(asked).team_id == team_id


def test_the_table_agrees_with_the_synthetic_teams() -> None:
    assert {(t.team_id, t.name, t.abbreviation) for t in TEAMS} == set(SYNTHETIC_TEAMS)


def test_every_team_name_and_matchup_code_in_the_real_data_resolves_to_its_id() -> None:
    """The shooter's team is the home or the away team of its row: the codes must say so."""
    names: dict[str, set[str]] = defaultdict(set)
    games: set[tuple[str, str, str]] = set()
    with open(shared_file("nba_shots.csv"), newline="") as handle:
        for row in csv.DictReader(handle):
            names[row["Team Name"]].add(row["Team ID"])
            games.add((row["Team ID"], row["Home Team"], row["Away Team"]))
    wrong = [
        (team_id, home, away)
        for team_id, home, away in games
        if int(team_id) not in (resolve_team(home).team_id, resolve_team(away).team_id)
    ]
    assert not wrong
    assert len(names) == 30
    for name, ids in names.items():
        assert {str(resolve_team(name).team_id)} == ids, name


def test_a_misspelt_team_is_refused_with_the_nearest_names() -> None:
    with pytest.raises(UnknownName) as raised:
        resolve_team("Miami Heats")
    assert "Miami Heat" in raised.value.nearest
    assert "Miami Heat" in str(raised.value) and "Miami Heats" in str(raised.value)
    with pytest.raises(UnknownName) as raised:
        resolve_team("Nicks")
    assert "New York Knicks" in raised.value.nearest


@pytest.mark.parametrize("asked", ["123", 10**20, "", "Springfield Isotopes"])
def test_ids_and_names_of_no_team_are_refused(asked) -> None:
    with pytest.raises(UnknownName):
        resolve_team(asked)


def test_an_error_never_echoes_more_than_a_short_prefix() -> None:
    with pytest.raises(UnknownName) as raised:
        resolve_team("Heat" + "x" * 2_000_000)
    assert len(str(raised.value)) < 200


class FakePredictions:
    """``predictions`` as far as the directory reads it: one document per shot."""

    def __init__(self, players: list[tuple[int, str]]) -> None:
        self.docs = [{"player_id": pid, "player_name": name} for pid, name in players]
        self.reads = 0

    def aggregate(self, pipeline):
        self.reads += 1
        names = {d["player_id"]: d["player_name"] for d in self.docs}
        return [{"_id": pid, "name": name} for pid, name in names.items()]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


PLAYERS = [
    (977, "Kobe Bryant"),
    (2544, "LeBron James"),
    (203507, "Giannis Antetokounmpo"),
    (203648, "Thanasis Antetokounmpo"),
    (1626224, "Larry Nance Jr."),
    (1629029, "Luka Dončić"),
]


@pytest.mark.parametrize(
    ("asked", "player_id"),
    [
        ("Kobe Bryant", 977),
        ("kobe  bryant", 977),
        ("Bryant", 977),
        (977, 977),
        ("977", 977),
        ("Nance", 1626224),
        ("larry nance jr", 1626224),
        ("Luka Doncic", 1629029),
    ],
)
def test_players_are_found_by_id_full_name_or_unique_last_name(asked, player_id) -> None:
    directory = PlayerDirectory(FakePredictions(PLAYERS))
    player = directory.resolve(asked)
    assert player.player_id == player_id
    assert player.name == dict(PLAYERS)[player_id]


def test_a_shared_last_name_or_a_typo_is_refused_with_the_candidates() -> None:
    directory = PlayerDirectory(FakePredictions(PLAYERS))
    with pytest.raises(UnknownName) as raised:
        directory.resolve("Antetokounmpo")
    assert raised.value.nearest == ["Giannis Antetokounmpo", "Thanasis Antetokounmpo"]
    with pytest.raises(UnknownName) as raised:
        directory.resolve("Lebron Jame")
    assert "LeBron James" in raised.value.nearest
    with pytest.raises(UnknownName):
        directory.resolve(12345)  # no stored shot


def test_the_player_table_is_read_again_once_stale_or_on_a_miss() -> None:
    store, clock = FakePredictions(PLAYERS), Clock()
    directory = PlayerDirectory(store, ttl_s=60, retry_s=2, clock=clock)
    assert directory.resolve("Bryant").player_id == 977
    assert directory.resolve("James").player_id == 2544
    assert store.reads == 1  # cached
    store.docs.append({"player_id": 1628369, "player_name": "Jayson Tatum"})
    with pytest.raises(UnknownName):
        directory.resolve("Tatum")  # the table was read under 2 s ago
    clock.now += 3
    assert directory.resolve("Tatum").player_id == 1628369  # a miss reads it again
    assert store.reads == 2
    clock.now += 61
    directory.resolve("Bryant")
    assert store.reads == 3  # stale after the TTL
