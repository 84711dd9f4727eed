"""When a replay sends outcomes: in game time by default, after wall time in the drill."""

from __future__ import annotations

import math

import pytest

from parivision.sources.csv_source import CsvSource
from producers.outcomes import GameTimeOutcomes, Outbox, WallTimeOutcomes
from producers.pacing import game_seconds


@pytest.fixture(scope="module")
def shots(games_csv):
    """5,000 real shots in game order, as the replay reads them."""
    items = []
    for item in CsvSource(games_csv):
        items.append(item)
        if len(items) == 5_000:
            break
    return items


def _replay(schedule, shots, wall_per_shot=0.0):
    """The replay's loop with its producer replaced by a list: ("attempt" | "outcome", id)."""
    sent = []
    now = 0.0
    for item in shots:
        sent += [("outcome", value) for _, value in schedule.before_attempt(item.shot)]
        now += wall_per_shot
        sent.append(("attempt", item.shot["shot_id"]))
        schedule.add(item.shot, (b"", item.shot["shot_id"]), now)
        sent += [("outcome", value) for _, value in schedule.due(now)]
    sent += [("outcome", value) for _, value in schedule.due(math.inf)]
    assert len(schedule) == 0 and schedule.next_due() is None
    return sent


def test_at_max_each_outcome_comes_after_its_attempt_and_before_the_players_next(shots):
    sent = _replay(GameTimeOutcomes(delay_s=2.0), shots)  # no wall time passes at all
    position = {(kind, shot_id): i for i, (kind, shot_id) in enumerate(sent)}
    assert len(sent) == 2 * len(shots) and len(position) == len(sent)  # each once
    by_player: dict[int, list] = {}
    for item in shots:
        by_player.setdefault(item.shot["player_id"], []).append(item.shot)
    for mine in by_player.values():
        for shot, following in zip(mine, mine[1:], strict=False):
            attempt, outcome = (
                position[("attempt", shot["shot_id"])],
                position[("outcome", shot["shot_id"])],
            )
            assert attempt < outcome < position[("attempt", following["shot_id"])]
    # ... and on the game clock: once a later shot of the same game 2 s or more on has been
    # sent, the outcome has been too.
    late = 0
    for i, item in enumerate(shots):
        shot = item.shot
        for other in shots[i + 1 : i + 200]:
            o = other.shot
            if o["game_id"] == shot["game_id"] and game_seconds(o) >= game_seconds(shot) + 2:
                late += position[("outcome", shot["shot_id"])] > position[("attempt", o["shot_id"])]
                break
    assert late == 0


def test_at_a_game_clock_speed_an_outcome_waits_its_game_time_scaled():
    schedule = GameTimeOutcomes(delay_s=2.0, speed=10.0)
    shot = {
        "game_id": 1,
        "player_id": 7,
        "period": 1,
        "minutes_remaining": 5,
        "seconds_remaining": 0,
    }
    schedule.add(shot, (b"7", b"x"), now=100.0)
    assert schedule.due(100.19) == [] and schedule.due(100.2) == [(b"7", b"x")]
    assert schedule.due(1e9) == []  # once


def test_the_wall_time_drill_sends_outcomes_only_when_their_delay_is_over(shots):
    schedule = WallTimeOutcomes(delay_s=0.5)
    sent = _replay(schedule, shots[:200], wall_per_shot=0.01)
    position = {(kind, shot_id): i for i, (kind, shot_id) in enumerate(sent)}
    for i, item in enumerate(shots[:150]):
        # 0.5 s at 0.01 s a shot: the next 49 attempts go first, whoever shoots them.
        after = position[("outcome", item.shot["shot_id"])]
        assert after > position[("attempt", shots[i + 49].shot["shot_id"])]


def test_held_outcomes_keep_the_order_and_share_requests(shots):
    """At 250 shots/s, due outcomes held up to 50 ms (replay() holds them 20), in replay()'s
    order of calls: each still comes after its attempt and before its player's next, none
    waits past the hold (or past the next shot after it), and they go out in groups."""
    schedule, box = GameTimeOutcomes(delay_s=2.0), Outbox(hold_s=0.05)
    sent, ready_at, groups = [], {}, 0
    now = 0.0

    def send(messages):
        nonlocal groups
        groups += bool(messages)
        for _, value in messages:
            sent.append(("outcome", value))
            assert now - ready_at[value] <= 0.05 + 0.004 + 1e-9

    def put(messages):
        for _, value in messages:
            ready_at[value] = now
        box.put(messages, now)

    for item in shots:
        now += 0.004
        key = str(item.shot["player_id"]).encode()
        put(schedule.before_attempt(item.shot))
        send(box.take(now, before=key))
        sent.append(("attempt", item.shot["shot_id"]))
        schedule.add(item.shot, (key, item.shot["shot_id"]), now)
        put(schedule.due(now))
        send(box.take(now))
    while schedule.next_due() is not None:  # the replay's end: the rest keep their delay
        now += 0.01
        put(schedule.due(now))
        send(box.take(now))
    now += 0.05
    send(box.take(now))
    assert len(box) == 0

    position = {entry: i for i, entry in enumerate(sent)}
    assert len(sent) == 2 * len(shots) and len(position) == len(sent)
    by_player: dict[int, list] = {}
    for item in shots:
        by_player.setdefault(item.shot["player_id"], []).append(item.shot["shot_id"])
    for mine in by_player.values():
        for shot_id, following in zip(mine, mine[1:], strict=False):
            assert (
                position[("attempt", shot_id)]
                < position[("outcome", shot_id)]
                < position[("attempt", following)]
            )
    # 5,000 outcomes over 20 s: one group each 50 ms is 400; a player's next attempt forces
    # a few more.  One by one would be about 5,000.
    assert groups < len(shots) / 4, groups
