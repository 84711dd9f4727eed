"""A worker restarted between a shot's scoring and its outcome still joins the outcome."""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter

import pytest
from confluent_kafka import Consumer, TopicPartition

from parivision import schemas
from parivision.demo import start_process, stop_process, wait_for_group
from parivision.topics import ensure_topics
from producers.csv_source import CsvSource
from producers.pacing import MaxPacer
from producers.replay import replay
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.integration


class ScoredReader:
    def __init__(self, settings) -> None:
        topic = settings.topic(schemas.SCORED)
        self.consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka(),
                "group.id": uuid.uuid4().hex,
                "enable.auto.commit": False,
            }
        )
        parts = self.consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self.consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        self.scored: Counter = Counter()
        self.labelled: Counter = Counter()
        self.p_scored: dict[str, float] = {}
        self.p_labelled: dict[str, float] = {}

    def read(self) -> None:
        for message in self.consumer.consume(5000, timeout=0.5):
            if message.error():
                continue
            record = json.loads(message.value())
            shot_id = record["shot_id"]
            if record["labelled"]:
                self.labelled[shot_id] += 1
                self.p_labelled[shot_id] = record["p_champion"]
            else:
                self.scored[shot_id] += 1
                self.p_scored[shot_id] = record["p_champion"]


def test_predictions_kept_before_a_restart_are_joined_to_outcomes_after_it(
    services, settings_factory, champion_version, nba_csv
):
    endpoints, _ = services
    settings = settings_factory(outcome_delay_s=20.0)
    ensure_topics(settings)
    reader = ScoredReader(settings)
    first = start_process(settings, endpoints, "stream", "restart-1.log")
    second = None
    try:
        wait_for_group(settings, settings.stream_group(), {"stream": first})
        stats = {}
        sender = threading.Thread(
            target=lambda: stats.update(
                vars(
                    replay(
                        settings,
                        CsvSource(nba_csv),
                        pacer=MaxPacer(),
                        limit=2000,
                        show_progress=False,
                    )
                )
            )
        )
        sender.start()

        def all_scored() -> bool:
            reader.read()
            return len(reader.scored) == 2000

        wait_until(all_scored, 60, "2,000 shots scored by the first worker")
        assert not reader.labelled  # the outcomes are still 20 s away
        stop_process(first)

        second = start_process(settings, endpoints, "stream", "restart-2.log")
        sender.join(60)

        def all_labelled() -> bool:
            reader.read()
            return len(reader.labelled) == 2000

        wait_until(all_labelled, 120, "every outcome joined by the second worker")
    finally:
        for process in (first, second):
            if process is not None:
                stop_process(process)
    assert stats["outcomes"] == 2000
    # Nothing lost, nothing scored twice, and each label carries the prediction kept for it.
    assert set(reader.scored.values()) == {1} and set(reader.labelled.values()) == {1}
    assert reader.p_labelled == reader.p_scored
