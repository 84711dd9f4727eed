"""The ``shots.dlq`` record: the original kept, the reason and where from, under Kafka's limit."""

import base64
import json

from parivision.dlq import ORIGINAL_KEPT, dead_letter


def test_dead_letter_keeps_the_original_bytes_and_reason():
    raw = b"\xff\xfe not utf-8"
    record = json.loads(
        dead_letter(
            raw,
            "not valid JSON",
            stage="validate-attempt",
            topic="shots.attempts",
            partition=2,
            offset=41,
            key=b"123",
        )
    )
    assert base64.b64decode(record["original_b64"]) == raw
    assert record["reason"] == "not valid JSON"
    assert (record["source_topic"], record["source_partition"], record["source_offset"]) == (
        "shots.attempts",
        2,
        41,
    )
    assert record["original_text"] is None and record["key"] == "123"


def test_a_dead_letter_of_a_near_megabyte_message_stays_under_kafkas_limit():
    for raw in (b"\x01" * 999_000, "é".encode() * 499_000, bytes(range(256)) * 3900):
        value = dead_letter(raw, "r" * 50_000, stage="validate-attempt", key=b"k" * 50_000)
        record = json.loads(value)
        assert len(value) < 1_000_000
        assert record["original_size"] == len(raw) and record["original_truncated"] is True
        assert base64.b64decode(record["original_b64"]) == raw[:ORIGINAL_KEPT]
        assert record["original_text"] is None
        assert record["reason"].startswith("rrr") and len(record["reason"]) < 2100
    small = json.loads(dead_letter(b'{"x": "\x01"}', "r", stage="validate-attempt"))
    assert small["original_text"] == '{"x": "\x01"}' and small["original_truncated"] is False
