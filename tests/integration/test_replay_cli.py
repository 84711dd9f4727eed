"""`parivision replay` run as a user runs it, against the real broker: its last line is one JSON
object, and every count in it is what the topics received."""

from __future__ import annotations

import json
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition
from typer.testing import CliRunner

from parivision import schemas
from parivision.cli import app
from parivision.cli.processes import _child_env
from parivision.topics import end_offsets

pytestmark = pytest.mark.integration


def _read(settings, name: str) -> list[dict]:
    """Every message of one of this test's topics, decoded."""
    topic = settings.topic(name)
    count = end_offsets(settings, topic)
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka(), "group.id": f"read-{uuid.uuid4().hex[:6]}"}
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(settings.partitions)])
    records = []
    try:
        while len(records) < count:
            message = consumer.poll(10)
            assert message is not None, f"{len(records)} of {count} messages of {topic} read"
            assert message.error() is None, message.error()
            records.append(json.loads(message.value()))
    finally:
        consumer.close()
    return records


def test_the_replay_command_ends_with_json_whose_counts_are_what_the_topics_received(
    services, settings_factory, games_csv, tmp_path
):
    """By hand: 60 real shots with line 12's made flag broken; `--limit 50` sends the first 50
    good ones (a bad row does not count toward it), with their outcomes, and dead-letters one."""
    lines = games_csv.read_text().splitlines()[:61]  # the header and 60 real shots
    broken = lines[11].split(",")
    broken[17] = "maybe"
    lines[11] = ",".join(broken)
    path = tmp_path / "shots.csv"
    path.write_text("\n".join(lines) + "\n")
    good = [line.split(",") for i, line in enumerate(lines[1:], start=2) if i != 12][:50]
    header = lines[0].split(",")
    game, event = header.index("Game ID"), header.index("Game Event ID")
    expected_ids = {f"{row[game]}-{row[event]}" for row in good}

    settings = settings_factory()
    endpoints, _ = services
    result = CliRunner().invoke(
        app,
        ["replay", "--data", str(path), "--limit", "50", "--max"],
        env=_child_env(settings, endpoints),
    )
    assert result.exit_code == 0, result.output

    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["produced"], summary["outcomes"], summary["bad_rows"]) == (50, 50, 1)
    assert summary["bad_examples"][0].startswith("shots.csv line 12: ")
    assert summary["seconds"] > 0
    assert summary["shots_per_second"] == pytest.approx(50 / summary["seconds"], abs=0.1)
    # What the broker holds: each count is a topic's end offsets.
    assert end_offsets(settings, settings.topic(schemas.ATTEMPTS)) == summary["produced"]
    assert end_offsets(settings, settings.topic(schemas.OUTCOMES)) == summary["outcomes"]
    assert end_offsets(settings, settings.topic(schemas.DLQ)) == summary["bad_rows"]
    attempts = _read(settings, schemas.ATTEMPTS)
    assert {a["shot_id"] for a in attempts} == expected_ids
    assert {a["replay_id"] for a in attempts} == {summary["replay_id"]}
