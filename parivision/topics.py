"""Creating the topics before any worker starts, with the partition counts the tables expect."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient, NewTopic

from parivision import schemas
from parivision.settings import Settings

TOPICS = (schemas.ATTEMPTS, schemas.OUTCOMES, schemas.SCORED, schemas.DLQ, schemas.MODEL_EVENTS)


class KafkaUnavailable(RuntimeError):
    """The broker named in the settings did not answer."""


def admin(settings: Settings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.kafka(), "socket.timeout.ms": 10000})


def ensure_topics(settings: Settings, *, timeout: float = 30.0) -> list[str]:
    """Create any missing PariVision topic; return the names created."""
    client = admin(settings)
    try:
        existing = set(client.list_topics(timeout=timeout).topics)
    except Exception as error:  # confluent raises KafkaException with a code only
        raise KafkaUnavailable(
            f"Kafka at {settings.kafka()} did not answer ({error}); start it with `parivision up` "
            "or set PARIVISION_KAFKA_BOOTSTRAP"
        ) from error
    wanted = [settings.topic(name) for name in TOPICS]
    # models.events is one ordered log of decisions: one partition.
    new = [
        NewTopic(
            name,
            num_partitions=1 if name.endswith(schemas.MODEL_EVENTS) else settings.partitions,
            replication_factor=1,
        )
        for name in wanted
        if name not in existing
    ]
    if not new:
        return []
    for future in client.create_topics(new, operation_timeout=timeout).values():
        try:
            future.result()
        except Exception as error:
            if "TOPIC_ALREADY_EXISTS" not in str(error):
                raise
    return [t.topic for t in new]


def end_offsets(settings: Settings, topic: str) -> int:
    """The sum of the high watermarks of a topic's partitions (how many records it ever had)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka(),
            "group.id": "parivision-offsets",
            "enable.auto.commit": False,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = metadata.topics[topic].partitions
        total = 0
        for p in partitions:
            _low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            total += high
        return total
    finally:
        consumer.close()
