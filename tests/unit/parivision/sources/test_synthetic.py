"""SyntheticSource: valid, consistent with the court, and as accurate as the real shots."""

from __future__ import annotations

from collections import Counter, defaultdict
from itertools import pairwise

import pytest

from parivision.court import zone_for
from parivision.schemas import Shot
from parivision.sources.base import SourceShot
from parivision.sources.synthetic import SyntheticSource

from ..conftest import action_group

GAMES = 300  # about 53,000 shots: enough for per-zone make rates to within a few points


@pytest.fixture(scope="module")
def items() -> list[SourceShot]:
    return list(SyntheticSource(games=GAMES, seed=11))


def rate(pairs: list[int]) -> float:
    return sum(pairs) / len(pairs)


def test_every_shot_validates_and_has_exactly_the_shot_fields(items) -> None:
    fields = set(Shot.model_fields) - {"replay_id", "produced_at"}
    assert len(items) > 45_000
    for item in items:
        assert set(item.shot) == fields and item.made in (0, 1)
        Shot(**item.shot)


def test_zones_type_and_distance_follow_the_location(items) -> None:
    for item in items[:20_000]:
        s = item.shot
        zone = zone_for(s["x"], s["y"])
        assert (s["shot_zone_basic"], s["shot_zone_area"], s["shot_zone_range"],
                s["shot_type"], s["shot_distance"]) == tuple(zone)  # fmt: skip


def test_zone_shares_are_the_real_ones(items, real_summary) -> None:
    shares = Counter(item.shot["shot_zone_basic"] for item in items)
    for zone, (_, count) in real_summary.made_by_zone.items():
        assert shares[zone] / len(items) == pytest.approx(count / real_summary.rows, abs=0.01)


def test_make_rates_overall_per_zone_and_per_action_are_close_to_the_real_data(
    items, real_summary
) -> None:
    assert rate([item.made for item in items]) == pytest.approx(0.459, abs=0.03)
    by_zone, by_group = defaultdict(list), defaultdict(list)
    for item in items:
        by_zone[item.shot["shot_zone_basic"]].append(item.made)
        by_group[action_group(item.shot["action_type"])].append(item.made)
    for zone, made in by_zone.items():
        real = real_summary.rate(real_summary.made_by_zone, zone)
        assert rate(made) == pytest.approx(real, abs=0.05), zone
    compared = 0
    for group, made in by_group.items():
        if len(made) >= 500:  # smaller groups are too noisy to compare
            real = real_summary.rate(real_summary.made_by_group, group)
            assert rate(made) == pytest.approx(real, abs=0.05), group
            compared += 1
    assert compared >= 6


def test_action_types_belong_to_their_zone(items) -> None:
    dunks = Counter(i.shot["shot_zone_basic"] for i in items if "Dunk" in i.shot["action_type"])
    threes = Counter(i.shot["action_type"] for i in items if i.shot["shot_type"][0] == "3")
    assert set(dunks) == {"Restricted Area"}
    assert not any("Layup" in action or "Dunk" in action for action in threes)


def test_games_look_like_games(items) -> None:
    games: dict[int, list[dict]] = defaultdict(list)
    for item in items:
        games[item.shot["game_id"]].append(item.shot)
    assert sorted(games) == list(range(22900001, 22900001 + GAMES))
    sizes = [len(shots) for shots in games.values()]
    assert 165 <= sum(sizes) / len(sizes) <= 190
    dates = [shots[0]["game_date"] for shots in games.values()]
    assert dates == sorted(dates) and dates[-1] > dates[0]
    rotation: list[int] = []  # players with an attempt, per team and game
    for shots in games.values():
        teams = {(s["team_id"], s["home_team"], s["away_team"]) for s in shots}
        assert len(teams) == 2
        players = Counter(s["team_id"] for s in {s["player_id"]: s for s in shots}.values())
        assert max(players.values()) <= 13
        rotation.extend(players.values())
        events = [s["game_event_id"] for s in shots]
        assert all(a < b for a, b in pairwise(events))
        clock = [(s["period"], -(s["minutes_remaining"] * 60 + s["seconds_remaining"]))
                 for s in shots]  # fmt: skip
        assert clock == sorted(clock) and clock[0][0] == 1 and clock[-1][0] >= 4
        assert len({s["game_date"] for s in shots}) == 1
    assert 9 <= sum(rotation) / len(rotation) <= 11.5  # 10.2 in 2018-19


def test_same_seed_same_shots_other_seed_other_shots() -> None:
    first = list(SyntheticSource(games=3, seed=5))
    assert first == list(SyntheticSource(games=3, seed=5))
    source = SyntheticSource(games=3, seed=5)
    assert list(source) == list(source)  # each iteration starts over
    other = list(SyntheticSource(games=3, seed=6))
    assert [i.shot["x"] for i in other[:50]] != [i.shot["x"] for i in first[:50]]


def test_limit_and_start_game_id() -> None:
    items = list(SyntheticSource(games=5, seed=1, start_game_id=1000, limit=250))
    assert len(items) == 250
    assert items[0].shot["game_id"] == 1000 and items[-1].shot["game_id"] == 1001
