"""The pieces of exactly once (streams/transactions.py) against the session's real broker.

- Offsets committed in a transaction with :func:`group_metadata` built from an aiokafka
  consumer's generation and member id land in that consumer's group, as the broker reports
  them; a stale generation is refused by the broker (the zombie fence).
- :func:`last_records` finds the last committed record of a partition whose log ends in
  commit markers and aborted transactions, checked against the offsets the test wrote.

(The worker slots are tested in tests/unit/streams/test_slots.py.)
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer
from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from streams.committed import last_records
from streams.transactions import group_metadata
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.integration


def _topic(bootstrap: str, partitions: int) -> str:
    name = f"txn-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        future.result(30)
    return name


def _transactional(bootstrap: str) -> Producer:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "transactional.id": f"txn-test-{uuid.uuid4().hex}"}
    )
    producer.init_transactions(30)
    return producer


def test_offsets_committed_in_a_transaction_land_in_the_faust_consumers_group(services):
    endpoints, _ = services
    bootstrap = endpoints.kafka
    topic = _topic(bootstrap, 2)
    plain = Producer({"bootstrap.servers": bootstrap})
    for i in range(10):
        plain.produce(topic, b"x", partition=i % 2)
    plain.flush(30)
    group = f"txn-group-{uuid.uuid4().hex[:8]}"

    async def joined_and_committed() -> tuple[int, str]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            while not consumer.assignment():
                await consumer.getmany(timeout_ms=500)
            coordinator = consumer._coordinator
            generation, member = coordinator.generation, coordinator.member_id
            producer = _transactional(bootstrap)
            producer.begin_transaction()
            producer.produce(topic, b"out", partition=0)
            producer.send_offsets_to_transaction(
                [TopicPartition(topic, 0, 3), TopicPartition(topic, 1, 4)],
                group_metadata(group, generation, member),
                30,
            )
            producer.commit_transaction(30)

            # A worker that missed a rebalance carries an older generation: refused.
            producer.begin_transaction()
            producer.produce(topic, b"zombie", partition=0)
            with pytest.raises(KafkaException) as refused:
                producer.send_offsets_to_transaction(
                    [TopicPartition(topic, 0, 5)],
                    group_metadata(group, generation - 1, member),
                    30,
                )
                producer.commit_transaction(30)
            assert "generation" in str(refused.value).lower()
            producer.abort_transaction(30)
            return generation, member
        finally:
            await consumer.stop()

    asyncio.run(joined_and_committed())
    admin = AdminClient({"bootstrap.servers": bootstrap})
    result = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group]
    committed = {tp.partition: tp.offset for tp in result.result(30).topic_partitions}
    assert committed == {0: 3, 1: 4}


def test_group_metadata_is_what_librdkafka_writes_for_a_consumer():
    consumer = Consumer({"bootstrap.servers": "127.0.0.1:9", "group.id": "some-group"})
    try:
        # Not joined yet: generation -1, no member id.
        assert group_metadata("some-group", -1, "") == consumer.consumer_group_metadata()
    finally:
        consumer.close()


def test_last_records_skips_commit_markers_and_aborted_transactions(services):
    endpoints, _ = services
    bootstrap = endpoints.kafka
    topic = _topic(bootstrap, 4)
    producer = _transactional(bootstrap)
    # Partition 0: three committed records (offsets 0-2, marker 3), then an aborted one
    # (offset 4, marker 5): the last committed record is offset 2.
    producer.begin_transaction()
    for _ in range(3):
        producer.produce(topic, b"kept", partition=0)
    producer.commit_transaction(30)
    producer.begin_transaction()
    producer.produce(topic, b"aborted", partition=0)
    producer.flush(30)  # in the log: an abort drops what is still queued
    producer.abort_transaction(30)
    # Partition 1: only an aborted transaction.  Partition 2: nothing.
    producer.begin_transaction()
    producer.produce(topic, b"aborted", partition=1)
    producer.flush(30)
    producer.abort_transaction(30)
    # Partition 3: one committed record, then 600 aborted ones: further back than one window.
    producer.begin_transaction()
    producer.produce(topic, b"kept", partition=3)
    producer.commit_transaction(30)
    producer.begin_transaction()
    for _ in range(600):
        producer.produce(topic, b"aborted", partition=3)
    producer.flush(30)
    producer.abort_transaction(30)

    # The broker writes a transaction's markers after it answers: wait for the last one.
    expected = {0: 3 + 1 + 1 + 1, 1: 1 + 1, 2: 0, 3: 1 + 1 + 600 + 1}
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex})

    def ends() -> dict[tuple[str, int], int]:
        return {
            (topic, p): consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
            for p in expected
        }

    try:
        wait_until(
            lambda: ends() == {(topic, p): n for p, n in expected.items()}, 60, "the markers"
        )
        ends_now = ends()
    finally:
        consumer.close()
    assert last_records(bootstrap, ends_now, window=2) == {
        (topic, 0): 2,
        (topic, 1): -1,
        (topic, 2): -1,
        (topic, 3): 0,
    }
