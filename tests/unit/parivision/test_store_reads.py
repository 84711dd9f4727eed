"""Reading a range of the store in slices: every document once, in order, no slice too big."""

from __future__ import annotations

import random

from parivision.store import read_range


class Collection:
    """Answers ``find`` on one field's range, as the server would, and keeps each answer's
    size."""

    def __init__(self, stamps: list[float]) -> None:
        self.docs = [{"_id": i, "at": at, "x": i * 2} for i, at in enumerate(stamps)]
        self.answers: list[int] = []

    def find(self, query, projection):
        ((field, bounds),) = query.items()
        low, high = bounds.get("$gt", bounds.get("$gte")), bounds.get("$lte", float("inf"))
        found = [
            {k: v for k, v in d.items() if k in projection or not projection}
            for d in self.docs
            if (d[field] > low or ("$gte" in bounds and d[field] == low)) and d[field] <= high
        ]
        random.Random(len(self.answers)).shuffle(found)  # no order promised
        self.answers.append(len(found))
        return found


def test_a_busy_hour_after_a_quiet_day_is_read_whole_in_order_and_in_small_slices():
    # A day with a shot a minute, then an hour at 10 shots a second, then a present 10 s
    # after the last.
    rng = random.Random(7)
    quiet = sorted(rng.uniform(0, 86_400) for _ in range(1_440))
    busy = sorted(86_400 + rng.uniform(0, 3_600) for _ in range(36_000))
    store = Collection(quiet + busy)
    after = 86_400 - 60.0

    read = list(read_range(store, "at", after, {"x": 1}, clock=lambda: 86_400 + 3_610.0))

    truth = [d for d in store.docs if d["at"] > after]
    assert [d["x"] for d in read] == [d["x"] for d in truth]
    assert set(read[0]) == {"x", "at"}  # the field read on is added to what was asked
    # Once the slices have found the rate, none is more than a few times the target.
    assert max(store.answers[10:]) <= 4 * 250
    assert len(store.answers) < 2 * len(truth) / 250


def test_inclusive_reads_the_first_stamp_too_and_an_empty_range_costs_one_read():
    store = Collection([10.0, 10.0, 11.0, 12.5])
    every = read_range(store, "at", 10.0, {}, inclusive=True, clock=lambda: 13.0)
    assert [d["at"] for d in every] == [10.0, 10.0, 11.0, 12.5]
    assert [d["at"] for d in read_range(store, "at", 10.0, {}, clock=lambda: 13.0)] == [11.0, 12.5]
    store.answers.clear()
    assert list(read_range(store, "at", 12.5, {}, clock=lambda: 13.0)) == []
    assert store.answers == [0]
