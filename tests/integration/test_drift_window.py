"""The retrain loop's drift window, read as a range on the real MongoDB server.

A drift check compares the newest ``window`` stored shots with the champion's reference.
Asked as "every shot scored after the last retrain, sorted, the first ``window``", the local
server sorts the whole store at every check (1.2 s at 24,000 shots, with the sink's writes
waiting behind it); the loop now reads the range from the oldest of the newest ``window``
``scored_at`` its polls have seen.  The truth here is the list of shots the test stored,
including one stored late with an older ``scored_at`` than shots the loop had already read.
"""

from __future__ import annotations

import pytest
from pymongo import MongoClient

from consumers.retrain_drift import recent_shots
from consumers.retrain_trigger import RetrainLoop
from models.drift import TriggerConfig
from parivision.store import SHOTS
from tests.integration.conftest import make_settings

pytestmark = pytest.mark.integration

WINDOW = 300


def _shot(n: int, scored_at: float) -> dict:
    return {
        "_id": f"g9-{n}",
        "shot_id": f"g9-{n}",
        "scored_at": scored_at,
        "features": {"distance_m": float(n)},
        "p_champion": 0.5,
        "outcome": n % 2,
    }


def test_the_drift_window_is_the_newest_stored_shots_read_as_a_range(services, tmp_path):
    settings = make_settings(services, home=tmp_path)
    client = MongoClient(settings.mongodb())
    db = client[settings.database()]
    try:
        loop = RetrainLoop(
            settings,
            db,
            TriggerConfig(min_new_labelled=0, every_s=None),
            window=WINDOW,
            champion=lambda: (None, None, "no champion yet"),
            judge=object(),
            reference_ids=lambda champion: set(),
        )
        db[SHOTS].insert_many([_shot(n, 1000.0 + n) for n in range(500)])
        assert loop._window_start(0.0) is None  # nothing polled yet: the full query is used
        loop._newest_stored(0.0)
        # Stored after that poll: newer shots, and one scored before shots already read.
        late = _shot(900, 1450.5)
        db[SHOTS].insert_many([_shot(n, 1000.0 + n) for n in range(500, 650)] + [late])
        loop._newest_stored(0.0)

        start = loop._window_start(0.0)
        stored = sorted(
            db[SHOTS].find({}, {"_id": 1, "scored_at": 1}), key=lambda d: d["scored_at"]
        )
        truth = [d["_id"] for d in stored[-WINDOW:]]
        assert "g9-900" in truth
        assert start is not None and start <= 1000.0 + 650 - WINDOW

        recent = recent_shots(db, WINDOW, newest_from=start)
        distances = {float(n): f"g9-{n}" for n in [*range(650), 900]}
        assert [distances[d] for d in recent["distance_m"]] == truth
        # The same window as the sort of every shot gives, in the order scored.
        assert recent.equals(recent_shots(db, WINDOW))
        # After a retrain at a later time, too few of the polled shots count: no shortcut.
        assert loop._window_start(1000.0 + 600) is None
    finally:
        client.drop_database(settings.database())
        client.close()
