"""The stream's online learners outlive their worker: saved at stop, restored at start."""

from __future__ import annotations

import json
import pickle
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition

from models.online import checkpoint_path
from parivision import schemas
from parivision.sources.csv_source import CsvSource
from producers.pacing import MaxPacer
from producers.replay import replay
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.integration

SHOTS = 2000


class ScoredReader:
    """Every record on shots.scored so far, read from the beginning, by replay id."""

    def __init__(self, settings):
        self.topic = settings.topic(schemas.SCORED)
        self.consumer = Consumer(
            {"bootstrap.servers": settings.kafka(), "group.id": f"scored-{uuid.uuid4().hex[:6]}"}
        )
        partitions = self.consumer.list_topics(self.topic, timeout=10).topics[self.topic]
        self.consumer.assign([TopicPartition(self.topic, p, 0) for p in partitions.partitions])
        self.records: dict[str, list[dict]] = {}

    def of(self, replay_id: str, *, labelled: bool) -> list[dict]:
        for message in self.consumer.consume(5000, timeout=0.2):
            if not message.error():
                record = json.loads(message.value())
                self.records.setdefault(record["replay_id"], []).append(record)
        return [r for r in self.records.get(replay_id, []) if r["labelled"] is labelled]


def _learned(path) -> dict[str, int]:
    state = pickle.loads(path.read_bytes())
    return {name: entry["learned"] for name, entry in state["learners"].items()}


def test_learners_are_saved_at_stop_and_restored_by_the_next_worker(
    settings_factory, pipeline, champion_version, games_csv
):
    settings = settings_factory(online_learners="logreg,arf", online_checkpoint_every=500)
    path = checkpoint_path(settings)

    with pipeline(settings, sink=False):
        reader = ScoredReader(settings)  # the pipeline has created the topics
        first = replay(
            settings, CsvSource(games_csv), pacer=MaxPacer(), limit=SHOTS, show_progress=False
        )
        wait_until(
            lambda: len(reader.of(first.replay_id, labelled=True)) == SHOTS, 60, "first labels"
        )
        # Saved every 500 labelled shots while running, not only at stop.
        wait_until(path.exists, 15, f"a periodic checkpoint at {path}")
    assert _learned(path) == {"logreg": SHOTS, "arf": SHOTS}  # the save at stop has them all
    state = pickle.loads(path.read_bytes())
    assert state["learners"]["arf"]["metrics"].n == SHOTS
    labelled = reader.of(first.replay_id, labelled=True)
    assert {tuple(r["p_online_by_learner"]) for r in labelled} == {("logreg", "arf")}

    with pipeline(settings, sink=False):
        second = replay(
            settings, CsvSource(games_csv), pacer=MaxPacer(), limit=SHOTS, show_progress=False
        )
        wait_until(
            lambda: len(reader.of(second.replay_id, labelled=True)) == SHOTS, 60, "second labels"
        )
        scored = reader.of(second.replay_id, labelled=False)
    reader.consumer.close()
    # A fresh learner says exactly 0.5 for the first shot it scores; a restored one never did.
    assert len(scored) == SHOTS
    assert all(r["p_online"] != 0.5 for r in scored)
    assert all(r["p_online_by_learner"]["arf"] != 0.5 for r in scored)
    assert _learned(path) == {"logreg": 2 * SHOTS, "arf": 2 * SHOTS}
    log = (settings.deployment_dir("logs") / "demo-stream.log").read_text(errors="replace")
    assert f"online learners restored from {path}: logreg ({SHOTS} shots learned)" in log
