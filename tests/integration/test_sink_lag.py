"""The sink's consumer lag, on the real broker, against what was produced and what was read."""

from __future__ import annotations

import orjson
import pytest
from confluent_kafka import Producer

from consumers.runner import export_lag, sink_consumer
from parivision import schemas
from parivision.metrics import SINK, for_job
from parivision.topics import ensure_topics

from .conftest import make_settings

pytestmark = pytest.mark.integration


def lag_by_partition(metrics) -> dict[tuple[str, str], float]:
    out = {}
    for family in metrics["lag"].collect():
        for sample in family.samples:
            out[(sample.labels["topic"], sample.labels["partition"])] = sample.value
    return out


def test_the_sinks_lag_is_what_was_produced_less_what_it_read(services):
    settings = make_settings(services)
    ensure_topics(settings)
    attempts = settings.topic(schemas.ATTEMPTS)
    producer = Producer({"bootstrap.servers": settings.kafka()})
    sent_by_partition: dict[int, int] = {}
    for i in range(200):
        partition = i % settings.partitions
        sent_by_partition[partition] = sent_by_partition.get(partition, 0) + 1
        producer.produce(
            attempts, orjson.dumps({"shot_id": f"s{i}"}), key=str(i).encode(), partition=partition
        )
    assert producer.flush(30) == 0

    consumer = sink_consumer(settings)
    metrics = for_job(SINK)
    read_by_partition: dict[int, int] = {}
    try:
        read = 0
        while read < 120:
            for message in consumer.consume(num_messages=120 - read, timeout=1.0):
                if message.error() is None:
                    read += 1
                    read_by_partition[message.partition()] = (
                        read_by_partition.get(message.partition(), 0) + 1
                    )
        export_lag(metrics, consumer, settings.sink_consumer_group())
        after = lag_by_partition(metrics)
    finally:
        consumer.close()

    # Partitions the sink has read from answer from the last fetch, the others from the broker;
    # either way each is behind by what was produced to it less what was read from it.
    assert {p: after.get((attempts, str(p))) for p in sent_by_partition} == {
        p: float(n - read_by_partition.get(p, 0)) for p, n in sent_by_partition.items()
    }
    assert sum(after.get((attempts, str(p)), 0) for p in sent_by_partition) == 80
    assert (settings.topic(schemas.SCORED), "0") in after  # an empty topic shows 0, not nothing
    assert after[(settings.topic(schemas.SCORED), "0")] == 0
