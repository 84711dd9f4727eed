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
import os
import random
import signal
import tempfile
import time
from pathlib import Path

import pandas as pd
import throwaway
from replication_measure import BROKERS, console, measure
from replication_rows import configurations, key, order, report

from infra.process import port_free
from infra.services import up
from parivision.rows import row_to_shot
from parivision.settings import Settings


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


def ours_left(home: Path) -> list[int]:
    """Processes whose command line names the throw-away home: ours, still running."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            with contextlib.suppress(OSError):
                if str(home).encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
    return found


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
