"""The worker's output (streams/output.py) against the session's real broker: a table entry as
large as the tables allow goes out through it, as the worker sends its changelogs.

One player's entry holds every prediction still waiting for its outcome; a replay of one
player's career at full speed makes it several MB (streams.tables.MAX_ENTRY_BYTES).
librdkafka refuses a record over 1 MB by default, which crashed the worker's agent in
tests/integration/test_demo.py once the changelogs went through this producer.
"""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from streams.output import Output
from streams.tables import CHANGELOG_CONFIG, MAX_ENTRY_BYTES

pytestmark = pytest.mark.integration


def test_a_changelog_entry_of_the_largest_size_allowed_is_written_and_read_back(services):
    endpoints, _ = services
    bootstrap = endpoints.kafka
    topic = f"entry-{uuid.uuid4().hex[:8]}-changelog"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics(
        [NewTopic(topic, 1, 1, config=dict(CHANGELOG_CONFIG))]
    ).values():
        future.result(30)
    entry = os.urandom(MAX_ENTRY_BYTES)  # random: the broker cannot compress it smaller

    output = Output(bootstrap)
    output.send(topic, b"player-1", entry, 0)
    asyncio.run(output.drain(timeout=60))

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": uuid.uuid4().hex,
            "fetch.message.max.bytes": MAX_ENTRY_BYTES + 64 * 1024,
        }
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    try:
        message = consumer.poll(30)
    finally:
        consumer.close()
    assert message is not None and message.error() is None
    assert message.key() == b"player-1" and message.value() == entry
