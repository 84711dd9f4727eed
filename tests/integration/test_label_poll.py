"""The retrain loop counts each outcome the sink stores once, whatever order the store gets
them in.

On the real MongoDB server, through the real sink's writes: outcomes arrive from two partitions
of ``shots.scored``, the second one's later, though the stream joined many of them first.  A
loop that polled on the stream's ``labelled_at`` missed a quarter of them at 3,000 shots a
minute (the count trigger never fired in ``test_metrics``).  The truth here is what was sent:
every shot's outcome, counted once, and the number made among them.
"""

from __future__ import annotations

import time

import pytest
from pymongo import MongoClient

from consumers.mongo_sink import MongoSink
from consumers.retrain_data import NewLabels
from parivision import schemas
from parivision.store import OUTCOME_VISIBLE_S, SHOTS, shot_document
from tests.integration.conftest import make_settings

pytestmark = pytest.mark.integration

SHOTS_SENT = 400


def _records(n: int, joined_at: float) -> tuple[dict, dict]:
    """Shot ``n``'s scored record and its labelled one (joined by the stream at ``joined_at``)."""
    scored = {
        "shot_id": f"g7-{n}",
        "game_id": 7,
        "player_id": n % 13,
        "replay_id": "poll",
        "model_version": "1",
        "p_champion": 0.4,
        "p_online": 0.45,
        "features": {"shot_distance": float(n % 30)},
        "produced_at": joined_at - 0.2,
        "scored_at": joined_at - 0.1,
        "labelled": False,
    }
    label = {
        **{k: v for k, v in scored.items() if k not in ("features", "scored_at")},
        "labelled": True,
        "outcome": int(n % 3 == 0),
        "labelled_at": joined_at,
    }
    return scored, label


@pytest.fixture
def store(services, tmp_path):
    settings = make_settings(services, home=tmp_path)
    client = MongoClient(settings.mongodb())
    sink = MongoSink(client, settings.database())
    yield sink, client[settings.database()]
    client.drop_database(settings.database())
    client.close()


def _deliver(sink: MongoSink, shots: list[int], joined: dict[int, float]) -> None:
    for n in shots:
        for record in _records(n, joined[n]):
            sink.add(schemas.SCORED, None, record)
    assert sink.flush() == len(shots)


def test_outcomes_stored_out_of_the_order_they_were_joined_are_each_counted_once(store):
    sink, db = store
    start = time.time()
    # The stream joined shot n at start + n/100; partition 0 holds the even shots, 1 the odd.
    joined = {n: start + n / 100 for n in range(SHOTS_SENT)}
    evens = [n for n in joined if n % 2 == 0]
    odds = [n for n in joined if n % 2 == 1]
    labels = NewLabels(db, 0.0)

    # The sink reads partition 0 first, and the loop polls between the two writes.
    _deliver(sink, evens, joined)
    first = labels.read()
    _deliver(sink, odds, joined)
    second = labels.read()
    assert labels.read() == []  # nothing new since

    counted = [d["shot_id"] for d in first + second]
    assert sorted(counted) == sorted(f"g7-{n}" for n in joined)  # each once, none missed
    assert len(second) == len(odds)
    made = sum(int(n % 3 == 0) for n in joined)
    assert sum(d["outcome"] for d in first + second) == made
    # Most odd shots were joined before the newest even one: a poll on labelled_at misses them.
    newest_even = max(d["labelled_at"] for d in first)
    assert sum(d["labelled_at"] < newest_even for d in second) > len(odds) * 0.9


def test_an_outcome_delivered_twice_is_not_new_the_second_time(store):
    sink, db = store
    start = time.time()
    joined = {n: start + n / 100 for n in range(50)}
    labels = NewLabels(db, 0.0)
    _deliver(sink, list(joined), joined)
    assert len(labels.read()) == 50
    stamped = {
        d["_id"]: d["outcome_stored_at"] for d in db[SHOTS].find({}, {"outcome_stored_at": 1})
    }

    # The sink restarted before its commit: the same records come again, later.
    time.sleep(OUTCOME_VISIBLE_S / 50)
    for n in list(joined)[:20]:
        sink.add(schemas.SCORED, None, _records(n, joined[n])[1])
    assert sink.flush() == 20
    after = {d["_id"]: d["outcome_stored_at"] for d in db[SHOTS].find({}, {"outcome_stored_at": 1})}
    assert after == stamped  # the first time the outcome was stored stands
    assert labels.read() == []


def test_a_batch_stamped_before_the_last_poll_but_written_after_it_is_counted(store):
    sink, db = store
    start = time.time()
    joined = {n: start + n / 100 for n in range(30)}
    labels = NewLabels(db, 0.0)
    _deliver(sink, list(joined)[:20], joined)
    assert len(labels.read()) == 20

    # A second sink stamped its batch a moment before the poll and its write lands after it.
    late = [shot_document(None, *_records(n, joined[n]), labels.until - 1.0) for n in range(20, 30)]
    db[SHOTS].insert_many(late)
    fresh = labels.read()
    assert sorted(d["shot_id"] for d in fresh) == sorted(f"g7-{n}" for n in range(20, 30))


def test_a_restarted_loop_does_not_count_again_what_it_counted_before(store):
    sink, db = store
    start = time.time()
    joined = {n: start + n / 100 for n in range(40)}
    _deliver(sink, list(joined)[:25], joined)
    before = NewLabels(db, 0.0)
    assert len(before.read()) == 25

    # Restarted from the mark its last retrain recorded; then the rest arrive.
    again = NewLabels(db, before.until)
    assert again.read() == []
    _deliver(sink, list(joined)[25:], joined)
    assert sorted(d["shot_id"] for d in again.read()) == sorted(f"g7-{n}" for n in range(25, 40))
