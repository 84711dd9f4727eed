"""Scaling out: two workers in one consumer group share the partitions of the shot topics."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter

import pytest
from confluent_kafka import Consumer, TopicPartition

from parivision import schemas
from parivision.demo import start_process, stop_process
from parivision.topics import ensure_topics
from producers.csv_source import CsvSource
from producers.pacing import MaxPacer
from producers.replay import replay
from tests.integration.conftest import attempts_partitions_per_worker, wait_until

pytestmark = pytest.mark.integration


def test_two_workers_split_the_partitions_and_score_every_shot_exactly_once(
    services, settings_factory, champion_version, games_csv
):
    endpoints, _ = services
    settings = settings_factory()
    ensure_topics(settings)
    workers = [start_process(settings, endpoints, "stream", f"scale-{i}.log") for i in (1, 2)]
    try:
        wait_until(
            lambda: attempts_partitions_per_worker(settings) == [2, 2],
            120,
            "two workers holding two partitions each",
        )
        stats = replay(
            settings, CsvSource(games_csv), pacer=MaxPacer(), limit=4000, show_progress=False
        )

        topic = settings.topic(schemas.SCORED)
        consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka(),
                "group.id": uuid.uuid4().hex,
                "enable.auto.commit": False,
            }
        )
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        scored, labelled = Counter(), Counter()

        def read() -> bool:
            for message in consumer.consume(2000, timeout=0.5):
                if message.error():
                    continue
                record = json.loads(message.value())
                (labelled if record["labelled"] else scored)[record["shot_id"]] += 1
            return len(labelled) == stats.produced

        wait_until(read, 120, "every shot labelled")
        time.sleep(1.0)  # a duplicate, if there were one, would arrive right behind
        read()
        consumer.close()
        assert attempts_partitions_per_worker(settings) == [2, 2]  # no rebalance happened meanwhile
    finally:
        for worker in workers:
            stop_process(worker)
    assert len(scored) == stats.produced == 4000
    assert set(scored.values()) == {1} and set(labelled.values()) == {1}
