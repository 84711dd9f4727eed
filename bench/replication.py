"""What three copies of every topic cost the stream: replication factor 1 against 3, side by side.

One run, one local KRaft cluster of three brokers (free loopback ports), one MongoDB and MLflow
store, one LightGBM champion trained on ``--train-rows`` real shots of ``nba_shots.csv``; the
same ``--shots`` real shots that follow them (the most recent, in game order) are the backlog of
every row.  Each row gets fresh topics (``ensure_topics``), a fresh consumer group and fresh
changelogs, with ``PARIVISION_KAFKA_REPLICATION_FACTOR`` 1 or 3 (3: ``min.insync.replicas`` 2;
producers are acks=all and idempotent either way).  Internal topics (``__consumer_offsets``)
have three copies in every row: that is the cluster's, not the setting's.  Per row:

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
  produce -> scored p50/p99 from the scored records (``latency_ms`` = scored_at - produced_at).

An untimed RF3 row of ``--warm-up`` shots runs first (the brokers' JIT and caches warm, or the
first timed row pays for them), and every row's topics are deleted after it (or the cleaner
compacts its changelogs while the next row is measured).  With ``--repeats`` N the pair runs N
times, in alternating order (1,3 then 3,1 ...); ratios are taken within a round.  The machine
is shared and noisy: read the ratios, not the absolute numbers.

    .venv/bin/python bench/replication.py                  # about 2.5 minutes on 2 cores
    .venv/bin/python bench/replication.py --repeats 3      # 1,3 3,1 1,3: about 6 minutes
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
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import serve
import stream_throughput
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from infra.kafka import running_nodes
from infra.process import port_free
from infra.services import up
from parivision.cli.demo import start_process, stop_process, wait_for_group
from parivision.cli.watching import cpu_seconds
from parivision.settings import Settings
from parivision.sources.csv_source import CsvSource
from parivision.topics import describe, ensure_topics
from producers.pacing import MaxPacer, RatePacer
from producers.replay import replay

console = Console(stderr=True)
BROKERS = 3


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
    names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(settings.topic_prefix)]
    for future in admin.delete_topics(names, operation_timeout=30).values():
        future.result()


def drain(
    settings: Settings, n: int, what: str, *, replay_id: str | None = None, timeout: float = 900
) -> tuple[float, list[float]]:
    """Read ``shots.scored`` until ``n`` labelled records are there (or, with ``replay_id``,
    ``n`` scored records of that replay); return when the last came and their ``latency_ms``."""
    consumer = stream_throughput.scored_consumer(settings)
    latencies: list[float] = []
    deadline = time.monotonic() + timeout
    columns = (TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(what, total=n)
        while len(latencies) < n and time.monotonic() < deadline:
            for message in consumer.consume(5000, timeout=0.2):
                if message.error():
                    continue
                record = json.loads(message.value())
                if replay_id is None and record.get("labelled"):
                    latencies.append(0.0)
                elif replay_id and not record.get("labelled") and record["replay_id"] == replay_id:
                    latencies.append(record.get("latency_ms", 0.0))
            progress.update(task, completed=len(latencies))
    finished = time.perf_counter()
    consumer.close()
    if len(latencies) < n:
        raise SystemExit(f"{what}: only {len(latencies)}/{n} within {timeout:.0f}s")
    return finished, latencies


def measure(
    base: Settings, endpoints, rf: int, backlog: Path, paced: Path, args, warm_up: bool = False
) -> dict[str, Any]:
    """One row: fresh topics with ``rf`` copies, the backlog, the worker timed, then paced."""
    tag, label = uuid.uuid4().hex[:6], "warm-up" if warm_up else f"RF{rf}"
    settings = base.model_copy(
        update={
            "kafka_bootstrap": endpoints.kafka,
            "topic_prefix": f"rf{rf}x{tag}.",
            "app_id": f"bench-rf{rf}-{tag}",
            "kafka_replication_factor": rf,
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
    worker = start_process(settings, endpoints, "stream", f"replication-rf{rf}-{tag}.log")
    row: dict[str, Any] = {"rf": rf, "shots": stats.produced, "fill_per_s": stats.produced / filled}
    try:
        wait_for_group(settings, settings.stream_group(), {"stream": worker})
        stream_throughput.wait_for_members(settings, 1)
        broker_cpu, worker_cpu = cpu_of(brokers), cpu_of([worker.pid])
        started = time.perf_counter()
        finished, _ = drain(settings, stats.produced, f"{label}: worker scoring the backlog")
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
            paced_stats = replay(
                settings,
                CsvSource(str(paced)),
                pacer=RatePacer(args.rate),
                limit=int(args.rate * args.paced_seconds),
                outcome_delay_s=0.0,
                console=console,
            )
            _, latencies = drain(
                settings,
                paced_stats.produced,
                f"{label}: paced shots scored",
                replay_id=paced_stats.replay_id,
                timeout=120,
            )
            row["p50_ms"], row["p99_ms"] = np.percentile(latencies, [50, 99]).tolist()
        # Every topic of the row, the worker's changelogs included: the copies it really had.
        row["copies"] = sorted({topic.replicas for topic in describe(settings)})
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


def report(args, rounds: list[dict[int, dict]], header: str) -> None:
    def fmt(value, spec=",.0f"):
        return "" if value is None else format(value, spec)

    print(f"\n{header}\n")
    print(
        "| replication | copies seen | fill shots/s | shots/s | ratio to RF1 | broker CPU ms/shot "
        "(3 JVMs) | worker CPU ms/shot | disk bytes/shot | paced p50 / p99 ms |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for number, pair in enumerate(rounds, 1):
        for rf in (1, 3):
            row = pair[rf]
            name = f"RF{rf}" + (" (min.insync 2)" if rf == 3 else "")
            if len(rounds) > 1:
                name += f", round {number}"
            paced = f"{fmt(row.get('p50_ms'), '.1f')} / {fmt(row.get('p99_ms'), '.1f')}"
            print(
                f"| {name} | {','.join(map(str, row['copies']))} | {fmt(row['fill_per_s'])} | "
                f"{fmt(row['shots_per_s'])} | {row['shots_per_s'] / pair[1]['shots_per_s']:.3f} | "
                f"{row['broker_cpu_ms']:.2f} | {row['worker_cpu_ms']:.2f} | {fmt(row['bytes'])} | "
                f"{paced if 'p50_ms' in row else ''} |"
            )
    if len(rounds) > 1:
        for key, label in (("shots_per_s", "shots/s"), ("broker_cpu_ms", "broker CPU ms/shot")):
            ratios = [pair[3][key] / pair[1][key] for pair in rounds]
            print(f"\nRF3 / RF1 {label}, median of {len(rounds)} rounds: {np.median(ratios):.3f}")
    print(json.dumps({"bench": "replication", "shots": args.shots, "rounds": rounds}))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=serve.DATA)
    parser.add_argument("--train-rows", type=int, default=60_000)
    parser.add_argument("--shots", type=int, default=20_000, help="the backlog, in game order")
    parser.add_argument("--repeats", type=int, default=1, help="RF1/RF3 pairs, alternating")
    parser.add_argument("--rate", type=float, default=250.0, help="paced shots/s")
    parser.add_argument("--paced-seconds", type=float, default=15.0, help="0: no paced phase")
    parser.add_argument(
        "--warm-up", type=int, default=5_000, help="shots of an untimed RF3 row first (0: none)"
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
        mongodb_port=serve.free_port(),
        mongodb_database="replication",
        stream_metrics_port=0,
        sink_metrics_port=0,
        replay_metrics_port=0,
    )
    paced_n = int(args.rate * args.paced_seconds)
    rounds: list[dict[int, dict]] = []
    try:
        train_raw, pool = serve.read_windows(args.data, args.train_rows, args.shots + paced_n)
        backlog, paced = home / "backlog.csv", home / "paced.csv"
        pd.DataFrame(pool[: args.shots]).to_csv(backlog, index=False)
        pd.DataFrame(pool[args.shots :] or pool[:1]).to_csv(paced, index=False)
        console.print(f"[bold]a local cluster of {BROKERS} brokers[/] (ports {port}, {controller})")
        endpoints = up(settings, console)
        history = [serve.row_to_shot(r) for r in train_raw]
        console.print(f"[bold]training the champion[/] on {len(history):,} shots")
        serve.train_champion(settings, [s for s, _ in history], [m for _, m in history])
        if args.warm_up:  # the brokers' JIT and caches, so that the first row pays no more
            warm = argparse.Namespace(**{**vars(args), "shots": args.warm_up, "paced_seconds": 0})
            measure(settings, endpoints, 3, backlog, paced, warm, warm_up=True)
        load = os.getloadavg()[0]
        for number in range(args.repeats):
            order = (1, 3) if number % 2 == 0 else (3, 1)
            rounds.append(
                {rf: measure(settings, endpoints, rf, backlog, paced, args) for rf in order}
            )
    finally:
        serve.clean_up(settings, home, keep=args.keep_home)
        for pid in ours_left(home):  # only what this run started: its home is in the argv
            console.print(f"[red]pid {pid} outlived the clean-up: killing it[/]")
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    header = (
        f"Replication factor 1 vs 3 on a local KRaft cluster of {BROKERS} brokers (every node "
        f"broker + controller, one machine, {os.cpu_count()} cores, load {load:.1f} at start). "
        f"Backlog: {args.shots:,} real shots (nba_shots.csv, the most recent, game order) and "
        f"their outcomes; one `parivision stream` worker, {settings.partitions} partitions, "
        f"batch {settings.batch_size}; champion LightGBM on the {args.train_rows:,} shots "
        f"before.  shots/s: worker joined -> last labelled record.  CPU: /proc utime+stime over "
        f"that window.  Disk bytes: the 3 brokers' write_bytes, fill + scoring.  Paced: "
        f"{args.rate:,.0f} shots/s for {args.paced_seconds:g} s, produce -> scored.  Took "
        f"{(time.monotonic() - began) / 60:.1f} min."
    )
    report(args, rounds, header)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # cleaned up already (main's finally)
        raise SystemExit(130) from None
