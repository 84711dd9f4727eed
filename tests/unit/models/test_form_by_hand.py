"""Player form against values worked out by hand, not by the code under test.

Eight shots of two players over two games, with zones, a second-half shot and two overtimes.
Each expected value below is written as the arithmetic a person does on paper: a rate shrunk
towards its prior is (made + weight x prior) / (shots + weight), with a weight of 20 shots for
the player's and the zone's rate and 5 for the recent one; counts enter as log(1 + n); the clock
is 12-minute quarters then 5-minute overtimes.  The stream computes form with the same two
functions (tests/integration/test_form.py checks it stores what batch training computes), so
these truths hold for what it serves too.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.form import FORM_NAMES, form_values, new_state, player_form, record_outcome

NAN = float("nan")
A, B = 1, 2

# player, game, period, minutes left, seconds left, zone, made
SHOTS = [
    (A, 10, 1, 11, 0, "Mid-Range", 1),  # 1: 60 s into the game
    (B, 10, 1, 10, 30, "Restricted Area", 0),  # 2: 90 s
    (A, 10, 1, 10, 0, "Mid-Range", 0),  # 3: 120 s
    (A, 10, 2, 11, 30, "Restricted Area", 1),  # 4: 720 + 30 = 750 s
    (B, 10, 5, 4, 0, "Above the Break 3", 1),  # 5: 2880 + 60 = 2940 s (first overtime)
    (A, 10, 6, 0, 30, "Mid-Range", 1),  # 6: 2880 + 300 + 270 = 3450 s (second overtime)
    (A, 11, 1, 11, 50, "Restricted Area", 0),  # 7: a new game, 10 s in
    (B, 11, 1, 11, 0, "Restricted Area", 1),  # 8: a new game, 60 s in
]

# The priors, as the league's make rates: 0.46 overall, by zone 0.40 mid-range, 0.63 at the
# rim, 0.35 above the break.
# player_log_shots_before, player_rate, player_zone_log_shots_before, player_zone_rate,
# player_recent_rate, game_shots_before, game_made_before, prev_made_in_game,
# secs_since_prev_in_game
BY_HAND = [
    # 1: A has no past: every rate is its prior, nothing in the game yet.
    (0, 0.46, 0, 0.40, 0.46, 0, 0, NAN, NAN),
    # 2: B likewise, at the rim.
    (0, 0.46, 0, 0.63, 0.46, 0, 0, NAN, NAN),
    # 3: A 1 of 1, 1 of 1 from mid-range, recent "1"; in game: 1 shot, 1 made, 120 - 60 s.
    (math.log(2), (1 + 9.2) / 21, math.log(2), (1 + 8) / 21, (1 + 2.3) / 6, 1, 1, 1, 60),
    # 4: A 1 of 2; first shot at the rim; recent "10"; in game 2 shots, 1 made, last missed,
    #    750 - 120 s.
    (math.log(3), (1 + 9.2) / 22, 0, 0.63, (1 + 2.3) / 7, 2, 1, 0, 630),
    # 5: B 0 of 1; first three above the break; recent "0"; in game 1 shot, 0 made, last
    #    missed, 2940 - 90 s.
    (math.log(2), (0 + 9.2) / 21, 0, 0.35, (0 + 2.3) / 6, 1, 0, 0, 2850),
    # 6: A 2 of 3; 1 of 2 from mid-range; recent "101"; in game 3 shots, 2 made, last made,
    #    3450 - 750 s.
    (math.log(4), (2 + 9.2) / 23, math.log(3), (1 + 8) / 22, (2 + 2.3) / 8, 3, 2, 1, 2700),
    # 7: A 3 of 4; 1 of 1 at the rim; recent "1011"; a new game: nothing in it yet.
    (math.log(5), (3 + 9.2) / 24, math.log(2), (1 + 12.6) / 21, (3 + 2.3) / 9, 0, 0, NAN, NAN),
    # 8: B 1 of 2; 0 of 1 at the rim; recent "01"; a new game.
    (math.log(3), (1 + 9.2) / 22, math.log(2), (0 + 12.6) / 21, (1 + 2.3) / 7, 0, 0, NAN, NAN),
]


def _columns(shots) -> dict[str, list]:
    names = ("player_id", "game_id", "period", "minutes_remaining", "seconds_remaining")
    columns = {name: [shot[i] for shot in shots] for i, name in enumerate(names)}
    columns["shot_zone_basic"] = [shot[5] for shot in shots]
    columns["made"] = [shot[6] for shot in shots]
    return columns


def _assert_rows(actual: np.ndarray, expected) -> None:
    expected = np.asarray(expected, dtype=np.float64)
    for i, (got, want) in enumerate(zip(actual, expected, strict=True)):
        for name, g, w in zip(FORM_NAMES, got, want, strict=True):
            if math.isnan(w):
                assert math.isnan(g), f"shot {i + 1}: {name} is {g}, by hand nothing (NaN)"
            else:
                assert g == pytest.approx(w, abs=1e-12), f"shot {i + 1}: {name}"


def test_batch_form_of_two_players_over_two_games_and_overtime_is_the_hand_worked_one():
    _assert_rows(player_form(_columns(SHOTS)), BY_HAND)


def test_form_read_before_each_outcome_shot_by_shot_is_the_hand_worked_one():
    # The stream's order of calls: read the form for the shot, later fold its outcome in.
    states = {A: new_state(), B: new_state()}
    rows = []
    for player, game, period, minutes, seconds, zone, made in SHOTS:
        shot = {
            "game_id": game,
            "period": period,
            "minutes_remaining": minutes,
            "seconds_remaining": seconds,
            "shot_zone_basic": zone,
        }
        rows.append(form_values(states[player], shot))
        record_outcome(states[player], shot, made)
    _assert_rows(np.asarray(rows), BY_HAND)


def test_the_recent_rate_forgets_all_but_the_last_25_shots():
    # 5 makes, then 25 misses: by hand the recent window holds the 25 misses only,
    # (0 + 5 x 0.46) / (25 + 5), while the career rate still counts the makes.
    shots = [(A, 10, 1, 11, 0, "Mid-Range", 1)] * 5 + [(A, 10, 1, 11, 0, "Mid-Range", 0)] * 25
    shots.append((A, 10, 1, 11, 0, "Mid-Range", 0))
    last = player_form(_columns(shots))[-1]
    values = dict(zip(FORM_NAMES, last, strict=True))
    assert values["player_recent_rate"] == pytest.approx(2.3 / 30)
    assert values["player_rate"] == pytest.approx((5 + 9.2) / 50)
    assert values["player_zone_rate"] == pytest.approx((5 + 8) / 50)
    assert values["player_log_shots_before"] == pytest.approx(math.log(31))


def test_a_zone_the_league_table_does_not_know_is_shrunk_to_the_league_rate():
    shots = [(A, 10, 1, 11, 0, "Somewhere New", 1), (A, 10, 1, 10, 0, "Somewhere New", 0)]
    second = dict(zip(FORM_NAMES, player_form(_columns(shots))[1], strict=True))
    assert second["player_zone_rate"] == pytest.approx((1 + 9.2) / 21)
