"""The stream's Faust tables: each change under its own event's partition, held until the records
of the batch that made it are delivered, then written by the worker's own producer.

Two tables, ``players`` and ``seen`` (what they hold: :mod:`streams.flow`), both
:class:`EventPartitionTable`, both encoded with orjson.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any, NamedTuple

import faust
import orjson
from faust.serializers import codecs

from parivision.topics import topic_config

TABLE_NAMES = ("players", "seen")


class _Orjson(codecs.Codec):
    """JSON through orjson: the same documents as the json codec (it reads what that one wrote,
    and the other way round) at a fraction of the cost.  Encoding the players' changelog entries
    and the scored records with the standard library was a sixth of the worker's time."""

    def _dumps(self, obj: Any) -> bytes:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)

    def _loads(self, s: bytes) -> Any:
        return orjson.loads(s)


codecs.register("orjson", _Orjson())


class _HeldMessage(NamedTuple):
    partition: int | None


class _HeldChange(NamedTuple):
    message: _HeldMessage


class EventPartitionTable(faust.Table):
    """A table whose changelog partition is the partition of the shot's own event.

    Faust takes the changelog partition from the *current* event, which inside a micro-batch is
    the last one buffered, not the one whose key is being written.  Writing each key under its
    own event's partition keeps recovery and rebalancing correct.
    """

    _explicit_partition: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        # (partition, key) -> the change's value and serializers, until take_held().
        self._held: dict[tuple[int | None, Any], tuple[Any, Any, Any]] = {}

    def send_changelog(
        self,
        partition: int | None,
        key: Any,
        value: Any,
        key_serializer: Any = None,
        value_serializer: Any = None,
    ) -> _HeldChange:
        """Hold the change until :meth:`take_held`: only the last one of a key is sent.

        A change must not reach the broker before the scored or labelled record of the batch
        that made it (a kill -9 between the two would lose that record: the worker that
        recovers the table finds the join done and drops the outcome it reads again), and
        Faust's producer sends table changes as soon as the loop is free.  Holding them lets
        the loop stay free while the batch's records are delivered, and sends one change a
        key a batch instead of one for every write.  They are written by the worker's own
        producer (:meth:`streams.publishing.BatchPublisher.send_held`), not Faust's.

        Faust reads only the partition of what this returns (``fut.message.partition``)."""
        self._held[(partition, key)] = (value, key_serializer, value_serializer)
        return _HeldChange(_HeldMessage(partition))

    def take_held(self) -> list[tuple[str, int | None, Any, Any]]:
        """Take every held change (the last of each key) as the changelog record Faust would
        send: ``(topic, partition, key bytes, value bytes)``, for the worker's producer (or its
        transaction) to write."""
        held, self._held = self._held, {}
        topic = self.changelog_topic
        name = topic.get_topic_name()
        records = []
        for (partition, key), (value, key_serializer, value_serializer) in held.items():
            key_bytes, _ = topic.prepare_key(key, key_serializer or self.key_serializer)
            value_bytes, _ = topic.prepare_value(value, value_serializer or self.value_serializer)
            records.append((name, partition, key_bytes, value_bytes))
        return records

    @property
    def holding(self) -> int:
        return len(self._held)

    def partition_for_key(self, key: Any) -> int | None:
        if self._explicit_partition is not None:
            return self._explicit_partition
        return super().partition_for_key(key)

    @contextmanager
    def at_partition(self, partition: int) -> Iterator[EventPartitionTable]:
        self._explicit_partition = partition
        try:
            yield self
        finally:
            self._explicit_partition = None


# The tables' changelogs are compacted (Faust creates them so), but Kafka compacts only closed
# segments, and by default a segment closes after a week: every write since would be re-read by a
# restarting worker.  Each shot writes its player's entry and its pending record a few times, so
# a few demo runs already made recovery take 13 s.  Closing segments every minute lets the
# cleaner keep recovery near one record per live key.
# One player's entry holds every prediction still waiting for its outcome.  A replay of one
# player's career at full speed (the Kobe Bryant file) can have thousands of them in flight at
# once, over the 1 MB Kafka takes by default, and a changelog write refused for its size stops
# the worker.  Entries may be this large (about 45,000 waiting shots of one player).
MAX_ENTRY_BYTES = 16 * 1024 * 1024

CHANGELOG_CONFIG = {
    "max.message.bytes": str(MAX_ENTRY_BYTES + 64 * 1024),
    "segment.ms": "60000",
    "min.cleanable.dirty.ratio": "0.1",
    "delete.retention.ms": "60000",
}


def add_tables(app: faust.App, partitions: int, replicas: int) -> dict[str, EventPartitionTable]:
    """The stream's tables (:data:`TABLE_NAMES`), added to ``app``, their changelogs with
    ``replicas`` copies."""
    return {name: _add_table(app, name, partitions, replicas) for name in TABLE_NAMES}


def _add_table(app: faust.App, name: str, partitions: int, replicas: int) -> EventPartitionTable:
    table = EventPartitionTable(
        app,
        name=name,
        default=None,
        beacon=app.tables.beacon,
        partitions=partitions,
        schema=faust.Schema(key_serializer="json", value_serializer="orjson"),
        extra_topic_configs={**CHANGELOG_CONFIG, **topic_config(replicas)},
    )
    return app.tables.add(table)


def at_partition(
    tables: dict[str, EventPartitionTable],
) -> Callable[[int], AbstractContextManager[None]]:
    """The scope :class:`streams.flow.ShotFlow` writes in: every table's changes go to
    ``partition``."""

    @contextmanager
    def scope(partition: int) -> Iterator[None]:
        with ExitStack() as stack:
            for table in tables.values():
                stack.enter_context(table.at_partition(partition))
            yield

    return scope
