"""Pacers: waits computed on a fake clock exactly, and one real-time check per timed pacer.

The real-time checks hold on a busy machine: a pacer must never send faster than asked (it
sleeps at least that long, whatever the load), and is allowed to be late by seconds, since a
machine running other work can stall any process.  How closely it keeps time on a quiet machine
is a benchmark's question (``bench/latency.py`` paces the replays it measures)."""

from __future__ import annotations

import time

import pytest

from producers.pacing import (
    GameClockPacer,
    MaxPacer,
    Pacer,
    RatePacer,
    game_seconds,
    make_pacer,
)


class FakeClock:
    """A clock that only moves when slept on (or advanced by hand)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def shot(game: int, period: int, minutes: int, seconds: int) -> dict:
    return {"game_id": game, "period": period, "minutes_remaining": minutes,
            "seconds_remaining": seconds}  # fmt: skip


def test_rate_pacer_keeps_2000_per_second_in_real_time() -> None:
    pacer = RatePacer(2000)
    started = time.perf_counter()
    for _ in range(1000):
        pacer.wait({})
    # 1,000 shots at 2,000/s: the last one half a second after the first, not sooner.
    assert 0.49 <= time.perf_counter() - started < 5.0


def test_rate_pacer_sleeps_in_chunks_not_per_shot() -> None:
    clock = FakeClock()
    pacer = RatePacer(2000, clock=clock, sleep=clock.sleep)
    for _ in range(1001):
        pacer.wait({})
        clock.now += 0.0001  # each send takes 0.1 ms
    assert clock.now - 100.0 == pytest.approx(1000 / 2000 + 0.0001, abs=0.003)
    assert len(clock.sleeps) < 400 and min(clock.sleeps) >= 0.002


def test_rate_pacer_does_not_burst_after_a_long_stall() -> None:
    clock = FakeClock()
    pacer = RatePacer(10, clock=clock, sleep=clock.sleep)
    pacer.wait({})
    clock.now += 5.0  # e.g. the broker was away
    pacer.wait({})
    pacer.wait({})
    assert clock.sleeps == [pytest.approx(0.1)]  # a fresh schedule, not 50 shots at once


def test_game_clock_pacer_waits_game_time_over_speed() -> None:
    clock = FakeClock()
    pacer = GameClockPacer(10, clock=clock, sleep=clock.sleep)
    pacer.wait(shot(1, 1, 11, 50))
    pacer.wait(shot(1, 1, 11, 20))  # 30 s of game later
    pacer.wait(shot(1, 1, 11, 20))  # same second: no wait
    pacer.wait(shot(1, 2, 11, 50))  # 11:20 left in Q1 + 10 s of Q2 = 690 s
    pacer.wait(shot(1, 5, 4, 0))  # overtime: 5-minute periods after 2,880 s
    assert clock.sleeps == pytest.approx([3.0, 69.0, (2940 - 730) / 10])


def test_game_clock_pacer_does_not_wait_across_games_or_backwards() -> None:
    clock = FakeClock()
    pacer = GameClockPacer(1, clock=clock, sleep=clock.sleep)
    pacer.wait(shot(1, 4, 0, 5))
    pacer.wait(shot(2, 1, 11, 40))  # next game: starts at once
    pacer.wait(shot(2, 1, 11, 50))  # clock ran backwards (out-of-order row): no wait
    pacer.wait(shot(2, 1, 11, 45))  # 5 s after the row before
    assert clock.sleeps == [pytest.approx(5.0)]


def test_game_clock_pacer_in_real_time() -> None:
    pacer = GameClockPacer(100)
    started = time.perf_counter()
    for seconds in (59, 39, 19):  # 20 s of game apart, 0.2 s each at speed 100
        pacer.wait(shot(7, 1, 11, seconds))
    assert 0.39 <= time.perf_counter() - started < 5.0


def test_game_seconds() -> None:
    assert game_seconds(shot(1, 1, 12, 0)) == 0
    assert game_seconds(shot(1, 4, 0, 0)) == 2880
    assert game_seconds(shot(1, 6, 0, 0)) == 2880 + 600


def test_max_pacer_never_waits(monkeypatch) -> None:
    def no_sleep(seconds: float) -> None:
        raise AssertionError(f"MaxPacer slept {seconds} s")

    monkeypatch.setattr(time, "sleep", no_sleep)
    pacer = MaxPacer()
    for _ in range(1000):
        assert pacer.wait({}) is None


def test_make_pacer_picks_one_and_refuses_two() -> None:
    assert isinstance(make_pacer(), MaxPacer) and isinstance(make_pacer(max=True), MaxPacer)
    assert isinstance(make_pacer(rate=50), RatePacer)
    assert isinstance(make_pacer(speed=4), GameClockPacer)
    assert all(isinstance(make_pacer(**kw), Pacer) for kw in ({}, {"rate": 1}, {"speed": 1}))
    for options in ({"rate": 5, "speed": 2}, {"rate": 5, "max": True}, {"speed": 2, "max": True}):
        with pytest.raises(ValueError, match="choose one"):
            make_pacer(**options)
    with pytest.raises(ValueError, match="above 0"):
        make_pacer(rate=0)
    with pytest.raises(ValueError, match="above 0"):
        make_pacer(speed=-1)
