"""How many shots per second one Faust worker scores, labels and learns from.

Pre-loads N real shots (the most recent, in game order) and their outcomes into fresh topics,
then starts one worker and times from the moment it has joined its group to the moment the last
labelled record is on ``shots.scored``.  Uses the services from ``parivision up`` (or the
PARIVISION_* settings) and the current champion.

    .venv/bin/python bench/stream_throughput.py --shots 50000
    .venv/bin/python bench/stream_throughput.py --workers 1 2    # one, then two in one group
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
from parivision.cli.processes import start_process, stop_process, wait_for_group
from parivision.settings import Settings
from parivision.sources.csv_source import CsvSource
from parivision.topics import ensure_topics
from producers.pacing import MaxPacer
from producers.replay import replay

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nba_shots.csv"


def scored_consumer(settings: Settings) -> Consumer:
    """A consumer of every partition of shots.scored from the start, in no group."""
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
    return consumer


def count_labelled(settings: Settings, n: int, timeout: float) -> float:
    """Block until n labelled records are on shots.scored; return when the last one arrived."""
    consumer = scored_consumer(settings)
    labelled, deadline = 0, time.monotonic() + timeout
    while labelled < n and time.monotonic() < deadline:
        for message in consumer.consume(5000, timeout=0.2):
            if not message.error() and json.loads(message.value()).get("labelled"):
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
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1],
        help="worker processes in the group; several values run one after the other (1 2)",
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="parivision-bench-"))
    data = args.data if args.file_order else str(in_game_order(args.data, args.shots, folder))

    base = Settings()
    endpoints = up(base)
    rows = []
    for workers in args.workers:
        rows.append(run(base, endpoints, data, args, workers))
        print(json.dumps(rows[-1]), flush=True)
    if len(rows) > 1:
        first = rows[0]["shots_per_second"]
        for row in rows:
            print(
                f"{row['workers']} worker(s): {row['shots_per_second']:,.0f} shots/s, "
                f"{row['shots_per_second'] / first:.2f}x of {rows[0]['workers']}"
            )


def wait_for_members(settings: Settings, n: int, timeout: float = 120.0) -> None:
    """Until the stream's group is stable with ``n`` members."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": settings.kafka()})
    name, deadline = settings.stream_group(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            group = admin.describe_consumer_groups([name])[name].result(10)
            if str(group.state).endswith("STABLE") and len(group.members) == n:
                return
        except Exception:  # not known yet
            pass
        time.sleep(0.5)
    raise SystemExit(f"the stream group did not reach {n} stable members in {timeout:.0f}s")


def run(base: Settings, endpoints, data: str, args, workers: int) -> dict:
    """Fresh topics with the shots and outcomes in them, then ``workers`` workers from zero."""
    tag = uuid.uuid4().hex[:8]
    settings = base.model_copy(
        update={
            "kafka_bootstrap": endpoints.kafka,
            "topic_prefix": f"bench{tag}.",
            "model_name": base.registered_model(),  # the champion trained for the run
            "app_id": f"bench-{tag}",
            "batch_size": args.batch_size,
            "stream_metrics_port": 0,  # several workers on one host
        }
    )
    ensure_topics(settings)
    stats = replay(
        settings, CsvSource(data), pacer=MaxPacer(), limit=args.shots, outcome_delay_s=0.0
    )
    processes = [
        start_process(settings, endpoints, "stream", f"bench-stream-{tag}-{i}.log")
        for i in range(workers)
    ]
    try:
        wait_for_group(settings, settings.stream_group(), {"stream": processes[0]})
        wait_for_members(settings, workers)
        started = time.perf_counter()
        finished = count_labelled(settings, stats.produced, timeout=600)
    finally:
        for process in processes:
            stop_process(process)
    seconds = finished - started
    return {
        "bench": "stream_throughput",
        "workers": workers,
        "partitions": settings.partitions,
        "shots": stats.produced,
        "batch_size": args.batch_size,
        "order": "file" if args.file_order else "game",
        "learners": settings.online_learners,
        "seconds": round(seconds, 2),
        "shots_per_second": round(stats.produced / seconds, 1),
    }


if __name__ == "__main__":
    main()
