"""Faults at scale: a worker killed, the broker restarted, MongoDB down for 30 s, mid-replay.

Each scenario replays N real 2018-19 shots in game order at a fixed rate into fresh topics, with
the stream worker and the sink as real processes on private local services (a Kafka broker, a
MongoDB server and an MLflow store under a temporary home), and injects its fault once a third
of the shots are sent:

- ``crash``: kill -9 of the stream worker, restarted 3 s later;
- ``broker``: the local Kafka broker stopped, started again on the same data 10 s later;
- ``mongodb``: the MongoDB server stopped for 30 s, then started again on the same data.

It then waits until every shot is stored with its outcome (or nothing moves for 180 s) and
prints one row per scenario: shots produced, stored, labelled; shots scored twice on
``shots.scored`` (the store keeps one); attempts released without their outcome; and seconds to
recover: from the fault's end until every shot sent by then is stored with its outcome.

    .venv/bin/python bench/faults.py                      # 100,000 shots at 1,000/s, all three
    .venv/bin/python bench/faults.py --shots 20000 --scenarios crash
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from pymongo import MongoClient
from rich.console import Console

from infra import kafka, mongodb
from infra.services import down, up
from parivision import schemas
from parivision.cli.demo import ensure_champion
from parivision.cli.processes import start_process, stop_process, wait_for_group
from parivision.settings import Settings
from parivision.sources.csv_source import CsvSource
from parivision.topics import end_offsets, ensure_topics
from producers.pacing import make_pacer
from producers.replay import replay

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nba_shots.csv"
SCENARIOS = ("crash", "broker", "mongodb")
GIVEN_UP = re.compile(r"no outcome for (.*) after \d+ s; scored the attempts waiting")
STALL_S = 180.0

console = Console(stderr=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def in_game_order(data: Path, shots: int, folder: Path) -> Path:
    """The file's most recent ``shots`` rows in game order, as live games interleave players."""
    import pandas as pd

    raw = pd.read_csv(data, low_memory=False)
    raw = raw.sort_values(["Game Date", "Game ID", "Game Event ID"], kind="stable")
    path = folder / "game_order.csv"
    raw.iloc[-shots:].to_csv(path, index=False)
    return path


def scored_twice(settings: Settings) -> int:
    """Shots with more than one unlabelled record on shots.scored."""
    topic = settings.topic(schemas.SCORED)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka(),
            "group.id": uuid.uuid4().hex,
            "enable.auto.commit": False,
        }
    )
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    ends = {}
    for p in partitions:
        ends[p] = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    counts: Counter[str] = Counter()
    done: set[int] = {p for p, end in ends.items() if end == 0}
    while len(done) < len(partitions):
        for message in consumer.consume(5000, timeout=1.0):
            if message.error():
                continue
            record = json.loads(message.value())
            if not record.get("labelled"):
                counts[record["shot_id"]] += 1
            if message.offset() + 1 >= ends[message.partition()]:
                done.add(message.partition())
    consumer.close()
    return sum(1 for n in counts.values() if n > 1)


def released_without_outcome(logs: Path, names: list[str]) -> int:
    """Attempts the worker logs as scored without the outcome they waited for."""
    count = 0
    for name in names:
        for match in GIVEN_UP.finditer((logs / name).read_text(errors="replace")):
            count += len(match.group(1).split(", "))
    return count


def run_scenario(
    scenario: str, base: Settings, endpoints, data: Path, shots: int, rate: float
) -> dict:
    tag = uuid.uuid4().hex[:8]
    settings = Settings(
        **base.model_dump()
        | {
            "kafka_bootstrap": endpoints.kafka,
            "mongodb_uri": endpoints.mongodb,
            "mlflow_tracking_uri": endpoints.mlflow,
            "topic_prefix": f"f{tag}.",
            "model_name": base.registered_model(),  # the champion trained for the run
            "mongodb_database": f"faults{tag}",
            "app_id": f"faults-{tag}",
            "sink_group": f"faults-sink-{tag}",
            "online_learners": "logreg",
        }
    )
    ensure_topics(settings)
    logs = settings.deployment_dir("logs")
    db = MongoClient(settings.mongodb())[settings.database()]
    stream_logs = [f"faults-{scenario}-stream-1.log"]
    sink = start_process(settings, endpoints, "sink", f"faults-{scenario}-sink.log")
    stream = start_process(settings, endpoints, "stream", stream_logs[0])
    workers = [stream]
    stats: dict = {}
    try:
        wait_for_group(settings, settings.stream_group(), {"stream": stream, "sink": sink})
        sender = threading.Thread(
            target=lambda: stats.update(
                vars(
                    replay(
                        settings,
                        CsvSource(data),
                        pacer=make_pacer(rate=rate),
                        limit=shots,
                        show_progress=False,
                    )
                )
            )
        )
        sender.start()
        attempts = settings.topic(schemas.ATTEMPTS)
        while end_offsets(settings, attempts) < shots // 3:
            time.sleep(0.2)
        console.print(f"[bold]{scenario}[/]: a third sent; the fault")
        if scenario == "crash":
            os.kill(stream.pid, signal.SIGKILL)
            stream.wait(10)
            time.sleep(3)
            stream_logs.append(f"faults-{scenario}-stream-2.log")
            workers.append(start_process(settings, endpoints, "stream", stream_logs[1]))
        elif scenario == "broker":
            kafka.stop(base)
            time.sleep(10)
            kafka.start(base)
        elif scenario == "mongodb":
            mongodb.stop(base)
            time.sleep(30)
            mongodb.start(base)
        fault_over = time.monotonic()
        sent_by_then = end_offsets(settings, attempts)

        def labelled() -> int:
            try:
                return db.predictions.count_documents({"outcome": {"$exists": True}})
            except Exception:  # the server is still coming back
                return -1

        recovered = None
        last, moved = labelled(), time.monotonic()
        while True:
            now_labelled = labelled()
            # Recovered: every shot sent until the fault ended is stored with its outcome.
            if recovered is None and now_labelled >= sent_by_then:
                recovered = time.monotonic() - fault_over
            if now_labelled != last:
                last, moved = now_labelled, time.monotonic()
            if not sender.is_alive() and now_labelled >= stats.get("produced", shots):
                break
            if time.monotonic() - moved > STALL_S:
                console.print(f"[red]{scenario}: stuck at {now_labelled:,} labelled[/]")
                break
            time.sleep(1.0)
        sender.join(60)
        row = {
            "scenario": scenario,
            "shots": shots,
            "produced": stats.get("produced", 0),
            "stored": len(db.shots.distinct("shot_id")),
            "labelled": db.predictions.count_documents({"outcome": {"$exists": True}}),
            "scored_twice": scored_twice(settings),
            "released_without_outcome": released_without_outcome(logs, stream_logs),
            "seconds_to_recover": round(recovered, 1) if recovered is not None else None,
        }
    finally:
        for process in (*workers, sink):
            stop_process(process)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=1000.0, help="shots per second")
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    args = parser.parse_args()
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {SCENARIOS}")

    folder = Path(tempfile.mkdtemp(prefix="parivision-faults-"))
    base = Settings(
        home=folder / "home",
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        mongodb_port=free_port(),
        stream_metrics_port=0,
        sink_metrics_port=0,
        replay_metrics_port=0,
        retrain_metrics_port=0,
    )
    endpoints = up(base, console)
    rows = []
    try:
        ensure_champion(
            Settings(**base.model_dump() | {"mlflow_tracking_uri": endpoints.mlflow}),
            args.data,
            console,
        )
        data = in_game_order(Path(args.data), args.shots, folder)
        for scenario in scenarios:
            rows.append(run_scenario(scenario, base, endpoints, data, args.shots, args.rate))
            print(json.dumps({"bench": "faults", **rows[-1]}), flush=True)
    finally:
        down(base)
    header = (
        "| fault | produced | stored | labelled | scored twice | released without outcome "
        "| s to recover |"
    )
    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['scenario']} | {row['produced']:,} | {row['stored']:,} | "
            f"{row['labelled']:,} | {row['scored_twice']:,} | {row['released_without_outcome']:,} "
            f"| {row['seconds_to_recover']} |"
        )


if __name__ == "__main__":
    main()
