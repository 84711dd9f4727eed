"""A what-if without an action: the player's mix of actions from the zone (the league's when he
has fewer than 20 shots there), each action's answer weighed by how often it was taken."""

from __future__ import annotations

import pytest

from consumers.api.whatif_mix import MIN_SHOTS, TOP_ACTIONS, ActionMixes, mixed, price_mix
from tests.unit.consumers.api.conftest import FakeDb

RIM = "Restricted Area"


def _rows(counts: dict[tuple[str, str], int]):
    return [{"_id": {"zone": z, "action": a}, "n": n} for (z, a), n in counts.items()]


class Store:
    """``predictions`` answering the player's groups or the league's, by the query's match."""

    def __init__(self, player: dict, league: dict) -> None:
        self.player, self.league = _rows(player), _rows(league)
        self.asked: list[dict] = []

    def aggregate(self, pipeline):
        match = pipeline[0]["$match"]
        self.asked.append(match)
        return iter(self.player if match else self.league)


def _mixes(player: dict, league: dict, **ttl) -> tuple[ActionMixes, Store]:
    db = FakeDb()
    store = Store(player, league)
    db["shots"] = store
    return ActionMixes(db, **ttl), store


def test_the_weighted_mean_counts_each_value_by_its_count():
    # (0.4 x 3 + 0.8 x 1) / 4 = 0.5
    assert mixed([0.4, 0.8], [3, 1]) == pytest.approx(0.5)


def test_a_player_with_enough_shots_from_the_zone_gets_his_own_mix_most_frequent_first():
    mixes, store = _mixes(
        {
            (RIM, "Layup Shot"): 12,
            (RIM, "Slam Dunk Shot"): 3,
            (RIM, "Driving Layup Shot"): 12,
            ("Mid-Range", "Jump Shot"): 40,
        },
        {(RIM, "Tip Shot"): 900},
    )
    actions, whose = mixes.mix(977, RIM)
    # 27 of his shots from the rim (>= 20); ties in count go by name.
    assert whose == "player"
    assert actions == [("Driving Layup Shot", 12), ("Layup Shot", 12), ("Slam Dunk Shot", 3)]
    assert store.asked == [{"player_id": 977}]


def test_a_player_with_few_shots_from_the_zone_gets_the_league_s_mix():
    assert MIN_SHOTS == 20
    mixes, store = _mixes({(RIM, "Layup Shot"): 19}, {(RIM, "Tip Shot"): 900, (RIM, "Dunk"): 5})
    assert mixes.mix(977, RIM) == ([("Tip Shot", 900), ("Dunk", 5)], "league")
    assert store.asked == [{"player_id": 977}, {}]


def test_a_zone_nobody_shot_from_has_no_mix():
    mixes, _ = _mixes({}, {(RIM, "Layup Shot"): 10})
    assert mixes.mix(977, "Left Corner 3") == ([], "none")


def test_only_the_most_frequent_actions_are_priced():
    counts = {(RIM, f"action {i:02d}"): 100 - i for i in range(12)}
    mixes, _ = _mixes(counts, {})
    actions, _ = mixes.mix(977, RIM)
    assert len(actions) == TOP_ACTIONS == 8
    assert actions[0] == ("action 00", 100) and actions[-1] == ("action 07", 93)


def test_groups_without_a_zone_or_an_action_are_skipped():
    mixes, store = _mixes({}, {})
    store.league = [
        {"_id": {"zone": None, "action": "Layup"}, "n": 50},
        {"_id": {"action": "Layup"}, "n": 50},
    ]
    assert mixes.mix(977, RIM) == ([], "none")


def test_a_player_s_mix_is_read_once_a_minute_not_once_a_click():
    mixes, store = _mixes({(RIM, "Layup Shot"): 30}, {})
    mixes.mix(977, RIM)
    mixes.mix(977, "Mid-Range")
    assert store.asked == [{"player_id": 977}, {}]  # his table once; the league's for Mid-Range
    fresh, fresh_store = _mixes({(RIM, "Layup Shot"): 30}, {}, player_ttl_s=0.0)
    fresh.mix(977, RIM)
    fresh.mix(977, RIM)
    assert fresh_store.asked == [{"player_id": 977}, {"player_id": 977}]


def _answer(action: str, p: float, online: float) -> dict:
    return {
        "action_type": action,
        "probability": p,
        "fair_odds": 1 / p,
        "shot_value": 2,
        "expected_points": 2 * p,
        "online": {"logreg": online},
        "form": {"f": 1},
    }


def test_a_mix_is_priced_as_the_count_weighted_probability_of_its_actions():
    asked = []

    def score(shots):
        asked.extend(s["action_type"] for s in shots)
        by_action = {"Layup Shot": (0.4, 0.3), "Slam Dunk Shot": (0.8, 0.9)}
        return [_answer(s["action_type"], *by_action[s["action_type"]]) for s in shots]

    answer = price_mix(
        score,
        {"x": 0, "action_type": "ignored"},
        [("Layup Shot", 3), ("Slam Dunk Shot", 1)],
        "player",
    )
    assert asked == ["Layup Shot", "Slam Dunk Shot"]
    # p = (0.4 x 3 + 0.8 x 1) / 4 = 0.5: odds 2.0, 2 x 0.5 = 1.0 point.
    assert answer["probability"] == pytest.approx(0.5)
    assert answer["fair_odds"] == pytest.approx(2.0)
    assert answer["expected_points"] == pytest.approx(1.0)
    # The learner the same way: (0.3 x 3 + 0.9 x 1) / 4 = 0.45.
    assert answer["online"]["logreg"] == pytest.approx(0.45)
    assert answer["action_type"] == "Layup Shot"  # the rest is the most frequent action's
    assert answer["action_mix"] == {
        "whose": "player",
        "shots": 4,
        "actions": [
            {"action_type": "Layup Shot", "share": 0.75, "probability": 0.4},
            {"action_type": "Slam Dunk Shot", "share": 0.25, "probability": 0.8},
        ],
    }
