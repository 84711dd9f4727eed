"""A live filter: games, players and teams by id or name; an unknown name gets the nearest."""

from __future__ import annotations

import pytest

from consumers.api.live_filter import Filter
from consumers.api.names import UnknownName
from tests.unit.consumers.api.feed_messages import CELTICS, KNICKS, scored


def test_filters_match_game_player_and_team_by_id_or_name() -> None:
    message = scored(1)
    assert Filter({}).matches(message)
    assert Filter({"game_id": 7, "team": "Celtics"}).matches(message)
    for team in (CELTICS, str(CELTICS), "BOS", "boston", "boston celtics"):
        assert Filter({"team": team}).matches(message), team
    assert not Filter({"player_id": 4}).matches(message)
    assert not Filter({"team": "Knicks"}).matches(message)
    # The team is its id: a message under the team's former name still matches.
    assert Filter({"team": "Nets"}).matches(
        scored(2, team_id=1610612751, team_name="New Jersey Nets")
    )


def test_a_filter_is_acknowledged_with_the_teams_name_as_the_data_spells_it() -> None:
    assert Filter({"team": "knicks", "game_id": 7}).as_dict() == {
        "game_id": 7,
        "team": "New York Knicks",
    }
    assert Filter({"team": str(KNICKS)}).as_dict() == {"team": KNICKS}


def test_an_unknown_team_in_a_filter_is_refused_with_the_nearest() -> None:
    with pytest.raises(UnknownName) as raised:
        Filter({"team": "Miami Heats"})
    assert "Miami Heat" in raised.value.nearest


def test_player_names_need_a_directory() -> None:
    with pytest.raises(ValueError, match="player_id"):
        Filter({"player": "Kobe Bryant"})


@pytest.mark.parametrize(
    "spec",
    [[], {"game": 1}, {"game_id": "x"}, {"player_id": True}, {"team": [1]}, {"player": 1.5}],
)
def test_a_bad_filter_is_refused_with_what_to_send(spec) -> None:
    with pytest.raises(ValueError):
        Filter(spec)
