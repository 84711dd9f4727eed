"""What three copies of every topic, and one Kafka transaction a batch, cost the stream.

Four rows side by side: replication factor 1 and 3, each at least once and exactly once
(``processing_guarantee``; ``--no-transactions``: the two at-least-once rows only).  One run,
one local KRaft cluster of three brokers (free loopback ports), one MongoDB and MLflow store,
one LightGBM champion trained on ``--train-rows`` real shots of ``nba_shots.csv``; the same
``--shots`` real shots that follow them (the most recent, in game order) are the backlog of
every row.  Each row gets fresh topics (``ensure_topics``), a fresh consumer group and fresh
changelogs, with ``PARIVISION_KAFKA_REPLICATION_FACTOR`` 1 or 3 (3: ``min.insync.replicas`` 2;
producers are acks=all and idempotent either way).  Internal topics (``__consumer_offsets``)
have three copies in every row: that is the cluster's, not the setting's.  So has
``__transaction_state`` (min.isr 2), which the exactly-once rows write to: every batch of their
worker is one transaction of its scored records, its tables' changes and its input offsets
(``streams/transactions.py``).  Per row:

- the backlog (attempts and outcomes) is produced at once: ``fill shots/s``;
- one ``parivision stream`` worker starts, and is timed from joining its group to the last
  labelled record on ``shots.scored`` (``bench/stream_throughput.py``): ``shots/s``;
- over that window, the CPU of the three broker JVMs (summed) and of the worker, from
  /proc/<pid>/stat (utime + stime), per shot;
- the bytes the three brokers wrote to disk (``write_bytes`` of /proc/<pid>/io: pages dirtied,
  every copy, the log cleaner's rewrites of compacted changelogs included) from before the
  fill to the end of the window, per shot.  Not ``du`` of the data dirs: the changelogs roll a
  segment a minute and are compacted as the row runs, so what stays on disk is less;
- then, same worker, ``--rate`` shots/s for ``--paced-seconds`` (the shots after the backlog):
  produce -> scored p50/p99 from the scored records (``latency_ms`` = scored_at - produced_at),
  and produce -> seen p50/p99: when this bench's reader (read_committed, librdkafka's default)
  got each record.  Exactly once, a record is scored before its transaction commits and seen
  only after, so only the second shows what the transactions add.

An untimed RF3 row of ``--warm-up`` shots runs first, exactly once unless
``--no-transactions`` (the brokers' JIT and caches warm, and the 50 partitions of
``__transaction_state`` are made, or the first timed row pays for them), and every row's topics
are deleted after it (or the cleaner compacts its changelogs while the next row is measured).
With ``--repeats`` N the rows run N times, each round in another order (a balanced Latin
square: every row runs first, and before each other row, equally often over 4 rounds; 2 without
transactions); ratios are taken within a round.  The machine is shared and noisy: read the
ratios, not the absolute numbers.

    .venv/bin/python bench/replication.py                  # 6.5-7.5 minutes on 2 cores
    .venv/bin/python bench/replication.py --repeats 4      # each row first once: ~25 minutes
    .venv/bin/python bench/replication.py --no-transactions --repeats 3   # RF1/RF3: 6 minutes
    .venv/bin/python bench/replication.py --shots 10000 --repeats 2 --paced-seconds 0
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import stream_throughput
import throwaway
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from infra.kafka import running_nodes
from infra.process import port_free
from infra.services import up
from parivision import schemas
from parivision.cli.processes import start_process, stop_process, wait_for_group
from parivision.cli.watching import cpu_seconds
from parivision.rows import row_to_shot
from parivision.settings import Settings
from parivision.sources.csv_source import CsvSource
from parivision.topics import describe, ensure_topics
from producers.pacing import MaxPacer, RatePacer
from producers.replay import replay

console = Console(stderr=True)
BROKERS = 3
AT_LEAST_ONCE, EXACTLY_ONCE = "at_least_once", "exactly_once"
# In topic prefixes, group and log names: no two rows share any.
SHORT = {AT_LEAST_ONCE: "alo", EXACTLY_ONCE: "eos"}
BASELINE = (1, AT_LEAST_ONCE)  # every row's shots/s ratio is to this row of its round


def key(rf: int, guarantee: str) -> str:
    """A row's name in the rounds (and the JSON line): ``rf3-eos``."""
    return f"rf{rf}-{SHORT[guarantee]}"


def configurations(transactions: bool) -> list[tuple[int, str]]:
    guarantees = (AT_LEAST_ONCE, EXACTLY_ONCE) if transactions else (AT_LEAST_ONCE,)
    return [(rf, guarantee) for guarantee in guarantees for rf in (1, 3)]


def order(rows: list, number: int) -> list:
    """Round ``number``'s order of ``rows``: a row of a balanced Latin square (Williams), so
    that over len(rows) rounds each row runs in every position once and right after each other
    row once; a row that runs first (or after a heavy one) is not always the same.  With two
    rows: as given, then reversed."""
    n = len(rows)
    first = [0] + [(k + 1) // 2 if k % 2 else n - k // 2 for k in range(1, n)]
    return [rows[(i + number) % n] for i in first]


def cluster_ports() -> tuple[int, int]:
    """A client and a controller port such that every node's (+0, +100, +200) is free; below
    the ephemeral range, so outgoing connections do not take them meanwhile."""
    for _ in range(500):
        port = random.randrange(20_000, 31_000)
        controller = port + 50
        wanted = [p + 100 * i for p in (port, controller) for i in range(BROKERS)]
        if all(port_free(p) for p in wanted):
            return port, controller
    raise SystemExit("no free ports for a three-broker cluster")


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


def ours_left(home: Path) -> list[int]:
    """Processes whose command line names the throw-away home: ours, still running."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            with contextlib.suppress(OSError):
                if str(home).encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
    return found


def median_ratio(rounds: list[dict[str, dict]], top: str, bottom: str, field: str) -> str:
    """The median over rounds of ``top``'s ``field`` over ``bottom``'s (rounds missing either:
    left out)."""
    ratios = [
        pair[top][field] / pair[bottom][field]
        for pair in rounds
        if field in pair.get(top, {}) and pair.get(bottom, {}).get(field)
    ]
    return f"{np.median(ratios):.3f}" if ratios else "-"


def report(args, rounds: list[dict[str, dict]], header: str) -> None:
    def fmt(value, spec=",.0f"):
        return "" if value is None else format(value, spec)

    def paced(row, prefix=""):
        if f"{prefix}p50_ms" not in row:
            return ""
        return f"{row[f'{prefix}p50_ms']:.1f} / {row[f'{prefix}p99_ms']:.1f}"

    print(f"\n{header}\n")
    print(
        "| replication | guarantee | run | copies seen | fill shots/s | shots/s | ratio to RF1 "
        "at least once | broker CPU ms/shot (3 JVMs) | worker CPU ms/shot | disk bytes/shot | "
        "paced p50 / p99 ms, scored | paced p50 / p99 ms, seen |"
    )
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    baseline = key(*BASELINE)
    for number, rows in enumerate(rounds, 1):
        for rf, guarantee in configurations(not args.no_transactions):
            row = rows[key(rf, guarantee)]
            name = f"RF{rf}" + (" (min.insync 2)" if rf == 3 else "")
            if len(rounds) > 1:
                name += f", round {number}"
            print(
                f"| {name} | {guarantee.replace('_', ' ')} | {row['run']} | "
                f"{','.join(map(str, row['copies']))} | {fmt(row['fill_per_s'])} | "
                f"{fmt(row['shots_per_s'])} | "
                f"{row['shots_per_s'] / rows[baseline]['shots_per_s']:.3f} | "
                f"{row['broker_cpu_ms']:.2f} | {row['worker_cpu_ms']:.2f} | {fmt(row['bytes'])} | "
                f"{paced(row)} | {paced(row, 'seen_')} |"
            )
    n = f"median of {len(rounds)} round{'s' if len(rounds) > 1 else ''}"
    rf1, rf3 = key(1, AT_LEAST_ONCE), key(3, AT_LEAST_ONCE)
    print(
        f"\nRF3 / RF1, at least once ({n}): shots/s {median_ratio(rounds, rf3, rf1, 'shots_per_s')}"
        f", broker CPU ms/shot {median_ratio(rounds, rf3, rf1, 'broker_cpu_ms')}"
    )
    if not args.no_transactions:
        for rf in (1, 3):
            eos, alo = key(rf, EXACTLY_ONCE), key(rf, AT_LEAST_ONCE)
            ratios = ", ".join(
                f"{label} {median_ratio(rounds, eos, alo, field)}"
                for field, label in (
                    ("shots_per_s", "shots/s"),
                    ("broker_cpu_ms", "broker CPU ms/shot"),
                    ("p99_ms", "paced p99 scored"),
                    ("seen_p99_ms", "paced p99 seen"),
                )
            )
            print(f"\nexactly once / at least once at RF{rf} ({n}): {ratios}")
    print(json.dumps({"bench": "replication", "shots": args.shots, "rounds": rounds}))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=throwaway.DATA)
    parser.add_argument("--train-rows", type=int, default=60_000)
    parser.add_argument("--shots", type=int, default=20_000, help="the backlog, in game order")
    parser.add_argument("--repeats", type=int, default=1, help="rounds, each in another order")
    parser.add_argument(
        "--no-transactions",
        action="store_true",
        help="at least once only: the RF1 and RF3 rows, no exactly-once rows",
    )
    parser.add_argument("--rate", type=float, default=250.0, help="paced shots/s")
    parser.add_argument("--paced-seconds", type=float, default=15.0, help="0: no paced phase")
    parser.add_argument(
        "--warm-up",
        type=int,
        default=5_000,
        help="shots of an untimed RF3 row first, exactly once unless --no-transactions (0: none)",
    )
    parser.add_argument("--keep-home", action="store_true")
    return parser.parse_args()


def interrupted(*_args) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C


def main() -> None:
    args = parse_args()
    signal.signal(signal.SIGTERM, interrupted)
    began = time.monotonic()
    home = Path(tempfile.mkdtemp(prefix="parivision-bench-replication-"))
    port, controller = cluster_ports()
    settings = Settings(
        home=home,
        kafka_brokers=BROKERS,
        kafka_port=port,
        kafka_controller_port=controller,
        mongodb_port=throwaway.free_port(),
        mongodb_database="replication",
        stream_metrics_port=0,
        sink_metrics_port=0,
        replay_metrics_port=0,
    )
    paced_n = int(args.rate * args.paced_seconds)
    rounds: list[dict[str, dict]] = []
    rows = configurations(not args.no_transactions)
    try:
        train_raw, pool = throwaway.read_windows(args.data, args.train_rows, args.shots + paced_n)
        backlog, paced = home / "backlog.csv", home / "paced.csv"
        pd.DataFrame(pool[: args.shots]).to_csv(backlog, index=False)
        pd.DataFrame(pool[args.shots :] or pool[:1]).to_csv(paced, index=False)
        console.print(f"[bold]a local cluster of {BROKERS} brokers[/] (ports {port}, {controller})")
        endpoints = up(settings, console)
        history = [row_to_shot(r) for r in train_raw]
        console.print(f"[bold]training the champion[/] on {len(history):,} shots")
        throwaway.train_champion(settings, [s for s, _ in history], [m for _, m in history])
        if args.warm_up:  # the brokers' JIT and caches, so that the first row pays no more
            warm = argparse.Namespace(**{**vars(args), "shots": args.warm_up, "paced_seconds": 0})
            # Exactly once, its first transaction makes __transaction_state: not in a timed row.
            guarantee = rows[-1][1]
            measure(settings, endpoints, 3, guarantee, backlog, paced, warm, warm_up=True)
        load = os.getloadavg()[0]
        for number in range(args.repeats):
            measured: dict[str, dict] = {}
            for run, (rf, guarantee) in enumerate(order(rows, number), 1):
                row = measure(settings, endpoints, rf, guarantee, backlog, paced, args)
                measured[key(rf, guarantee)] = row | {"run": run}
            rounds.append(measured)
    finally:
        throwaway.clean_up(settings, home, keep=args.keep_home)
        for pid in ours_left(home):  # only what this run started: its home is in the argv
            console.print(f"[red]pid {pid} outlived the clean-up: killing it[/]")
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    guarantees = "" if args.no_transactions else ", at least once vs exactly once,"
    header = (
        f"Replication factor 1 vs 3{guarantees} on a local KRaft cluster of {BROKERS} brokers "
        f"(every node broker + controller, one machine, {os.cpu_count()} cores, load "
        f"{load:.1f} at start). "
        f"Backlog: {args.shots:,} real shots (nba_shots.csv, the most recent, game order) and "
        f"their outcomes; one `parivision stream` worker, {settings.partitions} partitions, "
        f"batch {settings.batch_size}; champion LightGBM on the {args.train_rows:,} shots "
        f"before.  shots/s: worker joined -> last labelled record.  CPU: /proc utime+stime over "
        f"that window.  Disk bytes: the 3 brokers' write_bytes, fill + scoring.  Paced: "
        f"{args.rate:,.0f} shots/s for {args.paced_seconds:g} s, produce -> scored (the "
        f"worker's latency_ms) and produce -> seen (read_committed, here).  Took "
        f"{(time.monotonic() - began) / 60:.1f} min."
    )
    report(args, rounds, header)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # cleaned up already (main's finally)
        raise SystemExit(130) from None
