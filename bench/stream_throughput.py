"""How many shots per second one Faust worker scores, labels and learns from.

Pre-loads N real shots (the most recent, in game order) and their outcomes into fresh topics,
then starts one worker and times from the moment it has joined its group to the moment the last
labelled record is on ``shots.scored``.  Uses the services from ``parivision up`` (or the
PARIVISION_* settings) and the current champion.

    .venv/bin/python bench/stream_throughput.py --shots 50000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from infra.services import up
from parivision import schemas
from parivision.demo import start_process, stop_process, wait_for_group
from parivision.settings import Settings
from parivision.topics import ensure_topics
from producers.csv_source import CsvSource
from producers.pacing import MaxPacer
from producers.replay import replay

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nba_shots.csv"


def count_labelled(settings: Settings, n: int, timeout: float) -> float:
    """Block until n labelled records are on shots.scored; return when the last one arrived."""
    topic = settings.topic(schemas.SCORED)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka(),
            "group.id": uuid.uuid4().hex,
            "enable.auto.commit": False,
        }
    )
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in parts])
    labelled, deadline = 0, time.monotonic() + timeout
    while labelled < n and time.monotonic() < deadline:
        for message in consumer.consume(5000, timeout=0.2):
            if not message.error() and b'"labelled": true' in message.value():
                labelled += 1
    consumer.close()
    if labelled < n:
        raise SystemExit(f"only {labelled}/{n} labelled within {timeout}s")
    return time.perf_counter()


def in_game_order(data: str, shots: int, folder: Path) -> Path:
    """The file's rows in game order, as live games interleave players, in a temporary CSV.

    ``nba_shots.csv`` is sorted by player; replayed as it is, its first 20,000 rows are one
    player on one partition, with every attempt waiting on the one before (player form).
    """
    import pandas as pd

    raw = pd.read_csv(data, low_memory=False)
    raw = raw.sort_values(["Game Date", "Game ID", "Game Event ID"], kind="stable")
    path = folder / "game_order.csv"
    raw.iloc[-shots:].to_csv(path, index=False)  # the most recent games: most players
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=50_000)
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument(
        "--file-order", action="store_true", help="replay rows as the file has them, not by game"
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="parivision-bench-"))
    data = args.data if args.file_order else str(in_game_order(args.data, args.shots, folder))

    base = Settings()
    endpoints = up(base)
    tag = uuid.uuid4().hex[:8]
    settings = base.model_copy(
        update={
            "kafka_bootstrap": endpoints.kafka,
            "topic_prefix": f"bench{tag}.",
            "app_id": f"bench-{tag}",
            "batch_size": args.batch_size,
        }
    )
    ensure_topics(settings)
    stats = replay(
        settings, CsvSource(data), pacer=MaxPacer(), limit=args.shots, outcome_delay_s=0.0
    )
    worker = start_process(settings, endpoints, "stream", f"bench-stream-{tag}.log")
    try:
        wait_for_group(settings, settings.stream_group(), {"stream": worker})
        started = time.perf_counter()
        finished = count_labelled(settings, stats.produced, timeout=600)
    finally:
        stop_process(worker)
    seconds = finished - started
    print(
        json.dumps(
            {
                "bench": "stream_throughput",
                "shots": stats.produced,
                "batch_size": args.batch_size,
                "order": "file" if args.file_order else "game",
                "seconds": round(seconds, 2),
                "shots_per_second": round(stats.produced / seconds, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
