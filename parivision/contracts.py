"""Each topic's JSON Schema, generated from :mod:`parivision.schemas` into ``schemas/``.

The committed files are the contract for anyone producing to or reading from PariVision's
topics without this package (another language, a schema registry, a data catalogue).  Run
``python -m parivision.contracts`` to write them; ``--check`` writes nothing and exits 1 when a
committed file differs from what the models generate, so a schema change cannot ship without
its JSON.  Edit :mod:`parivision.schemas`, never the JSON.

A schema is the topic name without any ``topic_prefix``: the records are the same whatever
prefix a deployment gives its topics.

Example:
    >>> sorted(TOPIC_RECORDS)
    ['shots.attempts', 'shots.dlq', 'shots.outcomes', 'shots.scored']
    >>> schema = schema_for("shots.attempts")
    >>> schema["$id"], schema["title"], schema["properties"]["x"]["maximum"]
    ('urn:parivision:topic:shots.attempts', 'shots.attempts: Shot', 250)
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from parivision import generated
from parivision.schemas import (
    ATTEMPTS,
    DLQ,
    OUTCOMES,
    SCORED,
    DeadLetter,
    Outcome,
    ScoredShot,
    Shot,
)

__all__ = ["OUT_DIR", "TOPIC_RECORDS", "differences", "file_name", "generate", "schema_for"]

# The record each topic carries.  models.events is left out: it is the retrain loop's own
# control log (see models.promotion), read by no one outside PariVision.
TOPIC_RECORDS: dict[str, Any] = {
    ATTEMPTS: Shot,
    OUTCOMES: Outcome,
    SCORED: ScoredShot,
    DLQ: DeadLetter,
}

OUT_DIR = Path(__file__).resolve().parents[1] / "schemas"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
COMMAND = "python -m parivision.contracts"


def file_name(topic: str) -> str:
    """``shots.attempts`` -> ``shots.attempts.schema.json``."""
    return f"{topic}.schema.json"


def schema_for(topic: str) -> dict[str, Any]:
    """The JSON Schema of one topic's records, as validation reads them (input topics) or as
    they are written (output topics)."""
    record = TOPIC_RECORDS[topic]
    generated = TypeAdapter(record).json_schema()
    return {
        "$schema": DIALECT,
        "$id": f"urn:parivision:topic:{topic}",
        **generated,
        "title": f"{topic}: {record.__name__}",
    }


def generate() -> dict[str, str]:
    """File name -> file text, for every topic."""
    return {
        file_name(topic): json.dumps(schema_for(topic), indent=2, ensure_ascii=False) + "\n"
        for topic in TOPIC_RECORDS
    }


def differences(out_dir: Path = OUT_DIR) -> list[str]:
    """What in ``out_dir`` is not what :func:`generate` gives: missing, stray or edited files."""
    return generated.differences(out_dir, generate(), "*.schema.json", COMMAND)


def write(out_dir: Path = OUT_DIR) -> list[Path]:
    """Write every topic's schema into ``out_dir`` (created if need be); remove stray ones."""
    return generated.write(out_dir, generate(), "*.schema.json")


def main(argv: Sequence[str] | None = None) -> int:
    return generated.command(
        argv,
        prog=COMMAND,
        what="topic schemas",
        out_dir=OUT_DIR,
        count=len(TOPIC_RECORDS),
        differences=differences,
        write=write,
    )


if __name__ == "__main__":
    sys.exit(main())
