"""The retrain loop polls a store that only grows.  On the real MongoDB server, what one poll
asks must read about as many documents as arrived since the last poll, not every stored shot:
a poll that scans the store costs more with every shot kept (seconds a poll at 20,000 shots on
the local server), all the while the stream is writing to it."""

from __future__ import annotations

import pytest
from pymongo import MongoClient, monitoring

from bench.retrain_poll import documents
from consumers.retrain_trigger import RetrainLoop
from consumers.store_layout import ensure_layout
from models.drift import TriggerConfig
from models.features import build_features
from models.promotion.window import labelled_window
from models.reference import CHAMPION, Reference, reference_sample
from parivision.store import SHOTS
from tests.integration.conftest import make_settings

STORED, NEW, WINDOW = 6000, 40, 1000


class Commands(monitoring.CommandListener):
    """The commands a client sends, as sent."""

    def __init__(self) -> None:
        self.sent: list[dict] = []

    def started(self, event) -> None:
        self.sent.append(dict(event.command))

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass


def _store(db, frame, start: int) -> None:
    """Real shots as the sink stores them, one a second from ``1000 + start``."""
    db[SHOTS].insert_many(documents(frame, build_features(frame), start))


def _examined(db, command: dict) -> int:
    """Documents (or index keys, if more) the server reads to answer ``command``."""
    sent = {k: v for k, v in command.items() if not k.startswith("$") and k != "lsid"}
    stats = db.command("explain", sent, verbosity="executionStats")["executionStats"]
    return max(stats.get("totalDocsExamined", 0), stats.get("totalKeysExamined", 0))


@pytest.fixture
def loop_on_a_full_store(services, shots_frame, tmp_path):
    settings = make_settings(services, home=tmp_path)
    commands = Commands()
    client = MongoClient(settings.mongodb(), event_listeners=[commands])
    db = client[settings.database()]
    ensure_layout(db)
    _store(db, shots_frame.iloc[200_000 : 200_000 + STORED], start=0)
    sample = shots_frame.iloc[190_000:192_000]
    reference = reference_sample(build_features(sample), sample["made"].to_numpy())
    champion = ("1", Reference(reference, CHAMPION, "champion v1's training sample", "1"), "")
    config = TriggerConfig(min_new_labelled=0, every_s=None, drift_share=0.25, cooldown_s=60)
    loop = RetrainLoop(settings, db, config, window=WINDOW, champion=lambda: champion)
    yield loop, db, commands, shots_frame
    client.drop_database(settings.database())
    client.close()


def test_a_poll_reads_what_arrived_since_the_last_one(loop_on_a_full_store):
    loop, db, commands, shots_frame = loop_on_a_full_store
    first = loop.check()
    assert first.new_labelled == STORED and loop.drift.recent_rows == WINDOW

    _store(db, shots_frame.iloc[200_000 + STORED : 200_000 + STORED + NEW], start=STORED)
    commands.sent.clear()
    second = loop.check()
    asked = [c for c in commands.sent if {"find", "aggregate", "count"} & set(c)]
    assert len(asked) >= 3, commands.sent  # the new labels, the newest shot, shots since

    # It saw what arrived: the new labels counted, the report kept (fewer than a window new).
    assert second.new_labelled == STORED + NEW == db[SHOTS].count_documents({})
    assert second.labelled_until == 1000.0 + STORED + NEW - 1 + 0.5
    assert loop.drift is not None and second.drift is loop.drift

    examined = {
        next(iter(c)) + " " + str(c.get("filter") or c.get("pipeline")): _examined(db, c)
        for c in asked
    }
    assert max(examined.values()) <= 2 * NEW, examined


def test_the_sink_s_indexes_and_the_promotion_window_s_agree(loop_on_a_full_store):
    # Both ask for the labelled_at index; the server refuses a second one of that name with
    # other keys, which failed every challenge on a store the sink had made.
    _, db, _, _ = loop_on_a_full_store
    window = labelled_window(db, WINDOW)
    assert window.labelled_found == WINDOW
