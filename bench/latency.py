"""Latency against rate: the critical path (replay -> stream -> sink) paced at several rates.

The budget is p99 produce -> scored under 50 ms and produce -> stored under 500 ms.  For each
rate, on fresh topics and a fresh database of its own services: one stream worker and one sink
(real processes, default settings), and a replay of real shots in game order, paced at the rate,
outcomes in game time.  Then, from the timestamps the records carry:

- produce -> scored: each scored record's ``latency_ms`` (its ``scored_at`` less the attempt's
  ``produced_at``, stamped by the worker);
- produce -> stored: each prediction's ``stored_at`` less its ``produced_at`` (stamped by the sink
  as it writes the batch that stores it with its outcome);

and the CPU each process used per shot, read from /proc (what the rate costs; the machine's cores
are the limit).  The API and the retrain loop are not running: ``bench/compare.py`` has the whole
demo.  Prints a markdown table and one JSON line.

    .venv/bin/python bench/latency.py --rates 100 250 500 1000 --seconds 15
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import throwaway
from compare import percentiles_ms
from confluent_kafka import Consumer

from parivision import schemas
from parivision.cli.processes import start_process, stop_process, wait_for_group
from parivision.cli.watching import CpuSampler, StoredCounts
from parivision.rows import row_to_shot
from parivision.settings import Settings

SCORED_P99_MS, STORED_P99_MS = 50.0, 500.0


def scored_latencies(
    settings: Settings, replay_id: str, want: int, timeout: float = 120.0
) -> list[float]:
    """``latency_ms`` of a replay's first ``want`` unlabelled records on shots.scored, in
    seconds."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka(),
            "group.id": f"latency-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([settings.topic(schemas.SCORED)])
    out: list[float] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < want and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=0.5):
                if message.error() or not message.value():
                    continue
                record = json.loads(message.value())
                if record.get("replay_id") != replay_id or record.get("labelled"):
                    continue
                if "latency_ms" in record:
                    out.append(record["latency_ms"] / 1000.0)
    finally:
        consumer.close()
    return out


def _wait_stored(
    settings: Settings, replay_id: str, want: int, rate: float, since: float
) -> dict[str, list[float]]:
    """Wait until the replay's shots are stored; their latencies (StoredCounts.latencies_ms)."""
    counts = StoredCounts(settings, replay_id, since)
    last, moved = -1, time.monotonic()
    try:
        while (stored := counts.look(want)) < want:
            if stored != last:
                last, moved = stored, time.monotonic()
            elif time.monotonic() - moved > 120:
                raise SystemExit(f"at {rate:g} shots/s: stored stuck at {stored:,} of {want:,}")
            time.sleep(counts.pause())
        return counts.latencies_ms()
    finally:
        counts.close()


def at_rate(
    base: Settings,
    endpoints,
    data: Path,
    warm_up: Path,
    rate: float,
    shots: int,
    within: float,
    sink_flush: float,
) -> dict[str, Any]:
    from parivision.sources.csv_source import CsvSource
    from parivision.topics import ensure_topics
    from producers.pacing import make_pacer
    from producers.replay import replay

    tag = uuid.uuid4().hex[:8]
    settings = base.model_copy(
        update={
            "topic_prefix": f"lat{tag}.",
            "model_name": base.registered_model(),  # the champion trained for the run
            "app_id": f"lat-{tag}",
            "sink_group": f"lat-sink-{tag}",
            "mongodb_database": f"lat{tag}",
            "batch_within_s": within,
            "sink_flush_s": sink_flush,
        }
    )
    ensure_topics(settings)
    processes = {
        "stream": start_process(settings, endpoints, "stream", f"lat-stream-{tag}.log"),
        "sink": start_process(settings, endpoints, "sink", f"lat-sink-{tag}.log"),
    }
    replay_id = f"lat-{tag}"
    try:
        wait_for_group(settings, settings.stream_group(), processes)
        wait_for_group(settings, settings.sink_consumer_group(), processes)
        # Earlier shots first, at the same rate, until they are stored: the worker's champion,
        # tables and connections warm, as in a pipeline that has been running.
        warm = replay(
            settings, CsvSource(str(warm_up)), pacer=make_pacer(rate=rate), replay_id=f"warm{tag}"
        )
        _wait_stored(settings, f"warm{tag}", warm.produced, rate, since=0.0)
        cpu = CpuSampler(settings.resolved_home())
        cpu.start()
        since = time.time()
        started = time.perf_counter()
        stats = replay(
            settings,
            CsvSource(str(data)),
            pacer=make_pacer(rate=rate),
            limit=shots,
            replay_id=replay_id,
        )
        sent_in = time.perf_counter() - started
        latencies = _wait_stored(settings, replay_id, stats.produced, rate, since=since)
        cpu.stop()
    finally:
        for process in processes.values():
            stop_process(process)
    scored = scored_latencies(settings, replay_id, stats.produced)
    stored_s = [ms / 1000.0 for ms in latencies["stored"]]
    scored_p50, scored_p99 = percentiles_ms(scored)
    stored_p50, stored_p99 = percentiles_ms(stored_s)
    cpu_ms = {
        kind: round(1000.0 * seconds / stats.produced, 2) for kind, seconds in cpu.by_kind().items()
    }
    return {
        "rate": rate,
        "batch_within_s": within,
        "sink_flush_s": sink_flush,
        "shots": stats.produced,
        "sent_per_s": round(stats.produced / sent_in, 1),
        "scored_p50_ms": scored_p50,
        "scored_p99_ms": scored_p99,
        "stored_p50_ms": stored_p50,
        "stored_p99_ms": stored_p99,
        "cpu_ms_per_shot": cpu_ms,
        "cpu_ms_per_shot_total": round(sum(cpu_ms.values()), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=throwaway.DATA)
    parser.add_argument("--rates", type=float, nargs="+", default=[100, 250, 500, 1000])
    parser.add_argument("--seconds", type=float, default=15.0, help="replay length at each rate")
    parser.add_argument(
        "--batch-within",
        type=float,
        nargs="+",
        default=[Settings().batch_within_s],
        help="the stream's micro-batch window(s), PARIVISION_BATCH_WITHIN_S; each with each rate",
    )
    parser.add_argument(
        "--sink-flush",
        type=float,
        default=Settings().sink_flush_s,
        help="the sink's longest wait before a write, PARIVISION_SINK_FLUSH_S",
    )
    parser.add_argument("--warm-up", type=int, default=500, help="shots sent before measuring")
    parser.add_argument("--train-rows", type=int, default=60_000)
    parser.add_argument("--keep-home", action="store_true")
    args = parser.parse_args()

    import pandas as pd

    from infra.services import up

    home = Path(tempfile.mkdtemp(prefix="parivision-bench-latency-"))
    settings = Settings(
        home=home,
        kafka_port=throwaway.free_port(),
        kafka_controller_port=throwaway.free_port(),
        mongodb_port=throwaway.free_port(),
        stream_metrics_port=0,
        sink_metrics_port=0,
        replay_metrics_port=0,
    )
    most = int(max(args.rates) * args.seconds)
    rows = []
    try:
        history_raw, pool = throwaway.read_windows(args.data, args.train_rows, args.warm_up + most)
        history = [row_to_shot(r) for r in history_raw]
        endpoints = up(settings, throwaway.console)
        throwaway.train_champion(settings, [s for s, _ in history], [m for _, m in history])
        data, warm_up = home / "shots.csv", home / "warm_up.csv"
        pd.DataFrame(pool[: args.warm_up]).to_csv(warm_up, index=False)
        pd.DataFrame(pool[args.warm_up :]).to_csv(data, index=False)
        # One run thrown away first: a fresh broker's JVM compiles its hot paths under the first
        # load, and made the first rate measured look like more CPU and a longer tail.
        throwaway.console.print("[bold]warming the broker (not measured)[/]")
        at_rate(
            settings,
            endpoints,
            data,
            warm_up,
            args.rates[0],
            2 * args.warm_up,
            args.batch_within[0],
            args.sink_flush,
        )
        for within in args.batch_within:
            for rate in args.rates:
                throwaway.console.print(
                    f"[bold]{rate:,.0f} shots/s, batches within {within:g} s[/]"
                )
                shots = int(rate * args.seconds)
                rows.append(
                    at_rate(
                        settings, endpoints, data, warm_up, rate, shots, within, args.sink_flush
                    )
                )
    finally:
        throwaway.clean_up(settings, home, keep=args.keep_home)

    fmt = lambda v: "" if v is None else f"{v:,.1f}"  # noqa: E731
    print(f"\nreplay -> stream -> sink, {args.seconds:g} s of real shots at each rate\n")
    print(
        "| shots/s | stream batch within s | sink flush s | scored p50 / p99 ms | "
        "stored p50 / p99 ms | within budget | CPU ms a shot |"
    )
    print("|---|---:|---:|---:|---:|---|---:|")
    for row in rows:
        met = (row["scored_p99_ms"] or 1e9) < SCORED_P99_MS and (
            row["stored_p99_ms"] or 1e9
        ) < STORED_P99_MS
        print(
            f"| {row['rate']:,.0f} | {row['batch_within_s']:g} | {row['sink_flush_s']:g} | "
            f"{fmt(row['scored_p50_ms'])} / {fmt(row['scored_p99_ms'])} | "
            f"{fmt(row['stored_p50_ms'])} / {fmt(row['stored_p99_ms'])} | "
            f"{'yes' if met else 'no'} | {row['cpu_ms_per_shot_total']:.2f} |"
        )
    print(f"\n({os.cpu_count()} cores here: CPU ms a shot x shots/s / 1000 = cores busy)")
    print(json.dumps({"bench": "latency", "rows": rows}))


if __name__ == "__main__":
    main()
