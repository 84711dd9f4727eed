"""A CSV with bad rows, replayed into the real broker: the good shots go out, each bad row goes to
the dead-letter topic with its line number and why, and the replay says so."""

from __future__ import annotations

import base64
import json
import uuid

import jsonschema
import pytest
from confluent_kafka import Consumer, TopicPartition

from parivision import contracts, schemas
from parivision.sources.csv_source import CsvSource
from parivision.topics import end_offsets, ensure_topics
from producers.pacing import MaxPacer
from producers.replay import replay

pytestmark = pytest.mark.integration

GOOD = 40


def _dead_letters(settings) -> list[dict]:
    topic = settings.topic(schemas.DLQ)
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka(), "group.id": f"dlq-{uuid.uuid4().hex[:6]}"}
    )
    count = end_offsets(settings, topic)
    consumer.assign([TopicPartition(topic, p, 0) for p in range(settings.partitions)])
    records = []
    try:
        while len(records) < count:
            message = consumer.poll(10)
            assert message is not None, f"{len(records)} of {count} dead letters read"
            assert message.error() is None, message.error()
            records.append(json.loads(message.value()))
    finally:
        consumer.close()
    return records


def test_a_bad_csv_row_is_dead_lettered_with_its_line_and_the_good_shots_go_out(
    settings_factory, games_csv, tmp_path
):
    lines = games_csv.read_text().splitlines()[: GOOD + 1]  # the header and 40 real shots
    broken = lines[11].split(",")
    broken[17] = "maybe"  # line 12's Shot Made Flag
    truncated = ",".join(lines[21].split(",")[:5])  # line 22 cut short
    lines[11], lines[21] = ",".join(broken), truncated
    path = tmp_path / "shots.csv"
    path.write_text("\n".join(lines) + "\n")

    settings = settings_factory()
    ensure_topics(settings)
    stats = replay(
        settings, CsvSource(path), pacer=MaxPacer(), outcome_delay_s=0.0, show_progress=False
    )

    assert (stats.produced, stats.bad_rows) == (GOOD - 2, 2)
    assert [e.split(":")[0] for e in stats.bad_examples] == [
        "shots.csv line 12",
        "shots.csv line 22",
    ]
    assert end_offsets(settings, settings.topic(schemas.ATTEMPTS)) == GOOD - 2
    letters = sorted(_dead_letters(settings), key=lambda d: d["reason"])
    assert len(letters) == 2
    for letter in letters:  # the published contract of shots.dlq
        jsonschema.validate(letter, contracts.schema_for(schemas.DLQ))
        assert letter["stage"] == "source"
    first, second = letters
    assert first["reason"].startswith("shots.csv line 12: ") and "maybe" in first["reason"]
    assert second["reason"].startswith("shots.csv line 22: ")
    # The row as it was, to fix and send again.
    assert base64.b64decode(first["original_b64"]).decode() == lines[11]
    assert second["original_text"] == truncated
