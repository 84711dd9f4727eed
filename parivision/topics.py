"""Creating the topics before any worker starts, with the partition counts the tables expect."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from parivision import schemas
from parivision.settings import Settings

TOPICS = (schemas.ATTEMPTS, schemas.OUTCOMES, schemas.SCORED, schemas.DLQ, schemas.MODEL_EVENTS)


class KafkaUnavailable(RuntimeError):
    """The broker named in the settings did not answer."""


def admin(settings: Settings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.kafka(), "socket.timeout.ms": 10000})


def _metadata(settings: Settings, client: AdminClient, timeout: float):
    try:
        return client.list_topics(timeout=timeout)
    except Exception as error:  # confluent raises KafkaException with a code only
        raise KafkaUnavailable(
            f"Kafka at {settings.kafka()} did not answer ({error}); start it with `parivision up` "
            "or set PARIVISION_KAFKA_BOOTSTRAP"
        ) from error


def _cluster_default(client: AdminClient, broker: int, timeout: float) -> int:
    """The cluster's ``default.replication.factor``, as broker ``broker`` reports it."""
    resource = ConfigResource(ResourceType.BROKER, str(broker))
    configs = client.describe_configs([resource], request_timeout=timeout)[resource].result(timeout)
    return int(configs["default.replication.factor"].value)


def replication_factor(
    settings: Settings, client: AdminClient | None = None, *, timeout: float = 30.0
) -> int:
    """How many copies each PariVision topic gets: ``settings.kafka_replication_factor``, or the
    cluster's ``default.replication.factor`` capped by its number of brokers when that is 0.

    Raises ValueError when the setting asks for more copies than the cluster has brokers (the
    broker would refuse every topic, and say less clearly why)."""
    client = client or admin(settings)
    metadata = _metadata(settings, client, timeout)
    brokers = len(metadata.brokers)
    if settings.kafka_replication_factor:
        if settings.kafka_replication_factor > brokers:
            raise ValueError(
                f"PARIVISION_KAFKA_REPLICATION_FACTOR={settings.kafka_replication_factor} but the "
                f"Kafka cluster at {settings.kafka()} has {brokers} broker(s): lower it, or 0 for "
                "the cluster's default"
            )
        return settings.kafka_replication_factor
    default = _cluster_default(client, min(metadata.brokers), timeout)
    return max(1, min(default, brokers))


def min_insync(replicas: int) -> int:
    """``min.insync.replicas`` for a topic of ``replicas`` copies: 2 from three copies up, so an
    acknowledged write (acks=all) is on two brokers and one broker can die without stopping
    writes; 1 below that, where 2 would stop every write when one copy is missing."""
    return 2 if replicas >= 3 else 1


def topic_config(replicas: int) -> dict[str, str]:
    """The configuration PariVision gives every topic it creates."""
    return {"min.insync.replicas": str(min_insync(replicas))}


@dataclass(frozen=True)
class TopicCopies:
    """One topic as the cluster has it: its name, partitions and copies of each partition."""

    name: str
    partitions: int
    replicas: int  # the fewest copies of any of its partitions
    brokers: int  # brokers in the cluster

    @property
    def warning(self) -> str:
        """What a user should know: a single copy on a cluster loses data with one broker."""
        if self.replicas == 1 and self.brokers > 1:
            return (
                f"one copy on a cluster of {self.brokers} brokers: the topic's partitions go "
                "offline, and their data is lost, with the broker that holds them"
            )
        return ""


def describe(settings: Settings, *, timeout: float = 10.0) -> list[TopicCopies]:
    """Every PariVision topic that exists (Faust's changelogs included), with its copies."""
    metadata = _metadata(settings, admin(settings), timeout)
    ours = {settings.topic(name) for name in TOPICS}
    changelogs = f"{settings.stream_group()}-"
    found = []
    for name, topic in sorted(metadata.topics.items()):
        if name not in ours and not name.startswith(changelogs):
            continue
        copies = min((len(p.replicas) for p in topic.partitions.values()), default=0)
        found.append(TopicCopies(name, len(topic.partitions), copies, len(metadata.brokers)))
    return found


def ensure_topics(settings: Settings, *, timeout: float = 30.0) -> list[str]:
    """Create any missing PariVision topic, with :func:`replication_factor` copies and
    :func:`topic_config`; return the names created."""
    client = admin(settings)
    existing = set(_metadata(settings, client, timeout).topics)
    wanted = [settings.topic(name) for name in TOPICS]
    missing = [name for name in wanted if name not in existing]
    if not missing:
        return []
    replicas = replication_factor(settings, client, timeout=timeout)
    # models.events is one ordered log of decisions: one partition.
    new = [
        NewTopic(
            name,
            num_partitions=1 if name.endswith(schemas.MODEL_EVENTS) else settings.partitions,
            replication_factor=replicas,
            config=topic_config(replicas),
        )
        for name in missing
    ]
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
            "group.id": settings.consumer_group("parivision-offsets"),
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
