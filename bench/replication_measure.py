"""One row of the replication bench, measured: fresh topics with its copies, the backlog filled,
one stream worker timed through it (its CPU, the brokers' CPU and disk writes per shot), then
paced shots for their produce -> scored and produce -> seen latencies (``bench/replication.py``).
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import stream_throughput
from replication_rows import key
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from infra.kafka import running_nodes
from parivision import schemas
from parivision.cli.processes import start_process, stop_process, wait_for_group
from parivision.cli.watching import cpu_seconds
from parivision.settings import Settings
from parivision.sources.csv_source import CsvSource
from parivision.topics import describe, ensure_topics
from producers.pacing import MaxPacer, RatePacer
from producers.replay import replay

console = Console(stderr=True)
BROKERS = 3


def cpu_of(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += cpu_seconds(pid)
    return total


def written(pids: list[int]) -> int:
    """Bytes the processes sent to storage so far (pages they dirtied), from /proc/<pid>/io."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/io").read_text().splitlines():
                if line.startswith("write_bytes:"):
                    total += int(line.split()[1])
    return total


def drop_topics(settings: Settings) -> None:
    """Delete the row's topics (changelogs too), so the cleaner does not compact them while
    the next row is measured."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": settings.kafka()})
    names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(settings.prefix())]
    for future in admin.delete_topics(names, operation_timeout=30).values():
        future.result()


def check_filled(settings: Settings, produced: int) -> None:
    """Fail the row now if its fresh input topics do not hold one attempt and one outcome per
    shot (the replay reported them delivered): the drain would otherwise wait for labels that
    never come, and the worker would be blamed."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": settings.kafka(), "group.id": uuid.uuid4().hex})
    counts = {}
    for name in (schemas.ATTEMPTS, schemas.OUTCOMES):
        topic = settings.topic(name)
        parts = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        counts[name] = [
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts
        ]
    consumer.close()
    if any(sum(per_partition) != produced for per_partition in counts.values()):
        raise SystemExit(f"the fill of {produced:,} shots left {counts} records a partition")


def drain(
    settings: Settings,
    n: int,
    what: str,
    *,
    replay_id: str | None = None,
    timeout: float = 900,
    stall: float = 120,
    wait: float = 0.2,
    consumer=None,
) -> tuple[float, list[float], list[float]]:
    """Read ``shots.scored`` until ``n`` labelled records are there (or, with ``replay_id``,
    ``n`` scored records of that replay); return when the last came, their ``latency_ms`` and
    how long after ``produced_at`` each was seen here (ms; ``wait`` bounds the error: a
    consume returns when its batch is full or ``wait`` has passed).  Gives up after
    ``timeout``, or ``stall`` seconds without a new record: a worker that stopped.  Reads
    with ``consumer`` if given, else from the start."""
    consumer = consumer or stream_throughput.scored_consumer(settings)
    latencies: list[float] = []
    seen: list[float] = []
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    columns = (TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(what, total=n)
        while len(latencies) < n and time.monotonic() < min(deadline, last + stall):
            counted = len(latencies)
            messages = consumer.consume(5000, timeout=wait)
            now = time.time()
            for message in messages:
                if message.error():
                    continue
                record = json.loads(message.value())
                if replay_id is None and record.get("labelled"):
                    latencies.append(0.0)
                elif replay_id and not record.get("labelled") and record["replay_id"] == replay_id:
                    latencies.append(record.get("latency_ms", 0.0))
                    seen.append((now - record["produced_at"]) * 1000.0)
            if len(latencies) > counted:
                last = time.monotonic()
            progress.update(task, completed=len(latencies))
    finished = time.perf_counter()
    consumer.close()
    if len(latencies) < n:
        raise SystemExit(
            f"{what}: only {len(latencies)}/{n} within {timeout:.0f}s (none in the last "
            f"{time.monotonic() - last:.0f}s)"
        )
    return finished, latencies, seen


def paced_phase(settings: Settings, paced: Path, args, label: str) -> tuple[list, list]:
    """``--rate`` shots/s for ``--paced-seconds``; their scored and seen latencies (ms).  Read
    while they are produced: what is seen is when a record became readable, not when the
    replay (which returns at its end) let the reading start."""
    from confluent_kafka import TopicPartition

    replay_id, limit = uuid.uuid4().hex[:12], int(args.rate * args.paced_seconds)
    # From the end: parsing the backlog's records meanwhile delayed the first paced ones ~1 s.
    consumer = stream_throughput.scored_consumer(settings)
    consumer.assign(
        [
            TopicPartition(tp.topic, tp.partition, consumer.get_watermark_offsets(tp, 10)[1])
            for tp in consumer.assignment()
        ]
    )
    with ThreadPoolExecutor(1) as reader:
        reading = reader.submit(
            drain,
            settings,
            limit,
            f"{label}: paced shots scored",
            replay_id=replay_id,
            timeout=args.paced_seconds + 120,
            wait=0.005,  # seen within 5 ms of its arrival: the transactions' delay shows
            consumer=consumer,
        )
        stats = replay(
            settings,
            CsvSource(str(paced)),
            pacer=RatePacer(args.rate),
            limit=limit,
            outcome_delay_s=0.0,
            replay_id=replay_id,
            console=console,
            show_progress=False,  # one live display at a time: the reader's
        )
        _, latencies, seen = reading.result()
    if stats.produced != limit:
        raise SystemExit(f"{label}: the paced replay sent {stats.produced} shots, not {limit}")
    return latencies, seen


def measure(
    base: Settings,
    endpoints,
    rf: int,
    guarantee: str,
    backlog: Path,
    paced: Path,
    args,
    warm_up: bool = False,
) -> dict[str, Any]:
    """One row: fresh topics with ``rf`` copies, the backlog, the worker (with ``guarantee``)
    timed, then paced."""
    tag, name = uuid.uuid4().hex[:6], key(rf, guarantee)
    label = "warm-up" if warm_up else f"RF{rf} {guarantee.replace('_', ' ')}"
    settings = base.model_copy(  # the worker gets these through PARIVISION_* (start_process)
        update={
            "kafka_bootstrap": endpoints.kafka,
            "topic_prefix": f"{name}x{tag}.",
            "model_name": base.registered_model(),  # the champion trained for the run
            "app_id": f"bench-{name}-{tag}",
            "kafka_replication_factor": rf,
            "processing_guarantee": guarantee,
        }
    )
    brokers = [pid for _node, pid in running_nodes(base)]
    if len(brokers) != BROKERS:
        raise SystemExit(f"{len(brokers)} brokers run, not {BROKERS}")
    bytes_before = written(brokers)
    ensure_topics(settings)
    console.print(f"[bold]{label}[/]: filling the backlog of {args.shots:,} shots")
    filled = time.perf_counter()
    stats = replay(
        settings,
        CsvSource(str(backlog)),
        pacer=MaxPacer(),
        limit=args.shots,
        outcome_delay_s=0.0,
        console=console,
    )
    filled = time.perf_counter() - filled
    check_filled(settings, stats.produced)
    log_name = f"replication-{name}-{tag}.log"
    worker = start_process(settings, endpoints, "stream", log_name)
    row: dict[str, Any] = {
        "rf": rf,
        "guarantee": guarantee,
        "log": log_name,
        "shots": stats.produced,
        "fill_per_s": stats.produced / filled,
    }
    try:
        wait_for_group(settings, settings.stream_group(), {"stream": worker})
        stream_throughput.wait_for_members(settings, 1)
        broker_cpu, worker_cpu = cpu_of(brokers), cpu_of([worker.pid])
        started = time.perf_counter()
        finished, _, _ = drain(settings, stats.produced, f"{label}: worker scoring the backlog")
        broker_cpu, worker_cpu = cpu_of(brokers) - broker_cpu, cpu_of([worker.pid]) - worker_cpu
        per_shot = 1000.0 / stats.produced
        row |= {
            "seconds": finished - started,
            "shots_per_s": stats.produced / (finished - started),
            "broker_cpu_ms": broker_cpu * per_shot,
            "worker_cpu_ms": worker_cpu * per_shot,
            "bytes": (written(brokers) - bytes_before) / stats.produced,
        }
        if args.paced_seconds > 0:
            console.print(f"[bold]{label}[/]: {args.rate:,.0f} shots/s for {args.paced_seconds}s")
            latencies, seen = paced_phase(settings, paced, args, label)
            row["p50_ms"], row["p99_ms"] = np.percentile(latencies, [50, 99]).tolist()
            row["seen_p50_ms"], row["seen_p99_ms"] = np.percentile(seen, [50, 99]).tolist()
        # Every topic of the row, the worker's changelogs included: the copies it really had.
        row["copies"] = sorted({topic.replicas for topic in describe(settings)})
    except BaseException:
        console.print(
            f"[red]{label} failed[/]: worker log {settings.resolved_home()}/logs/{log_name}"
        )
        raise
    finally:
        stop_process(worker)
        with contextlib.suppress(Exception):  # the cluster may be gone (Ctrl-C): clean-up next
            drop_topics(settings)
    console.print(
        f"  {label}: {row['shots_per_s']:,.0f} shots/s, brokers {row['broker_cpu_ms']:.2f} "
        f"ms/shot, worker {row['worker_cpu_ms']:.2f} ms/shot"
    )
    return row
