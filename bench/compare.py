"""Every way PariVision scores shots, side by side in one run: one table of shots/s and latency.

Same shots, same broker, same MongoDB, same champion, in one run (the machine is shared and
noisy: the ratios are what we track, not the absolute numbers).  Sets everything up itself in a
throw-away home, as ``bench/serve.py`` does: local Kafka, MongoDB and MLflow store on free
loopback ports; a LightGBM champion trained on ``--train-rows`` real shots of ``nba_shots.csv``;
the ``--history-rows`` most recent of them stored as labelled predictions (the API's player
form).  The shots measured are the ``--shots`` that follow, in game order.  The rows:

- ``POST /predict``, one shot per request, sequential: the original project's way (the first
  ``--requests`` shots);
- ``POST /predict/batch``, ``--batch`` shots per request, sequential;
- ``raw loop``: a confluent-kafka consume -> score -> produce loop in one process, doing the
  worker's work (validation, player form in game order, the champion, the online learners, the
  scored and labelled records on ``shots.scored``, at-least-once: outputs flushed before the
  offsets are committed) without Faust: the near-limit reference every ratio is against;
- ``bare Faust``: a Faust agent that only decodes each event, with Faust's default settings
  and with the stream's (``bench/faust_ceiling.py``); two events make a shot;
- ``worker``: ``parivision stream`` with 1 and with 2 processes in one group
  (``bench/stream_throughput.py``);
- ``end-to-end``: ``parivision demo`` (API, stream, sink, retrain loop) paced at ``--rate``
  shots/s over the first ``--demo-shots`` shots; produce -> scored from the scored records,
  produce -> stored from each stored prediction's ``stored_at`` less its ``produced_at``.

The end-to-end row also reads each process's CPU time from /proc: what a shot costs where, so
what a rate would need.  Its retrain loop counts the stored history as new labelled shots and
tries one challenge at once, which fails (the history has no raw shots to train on): a cost
of this set-up, not of the demo.

Throughput rows read a backlog (the shots and outcomes already in Kafka), so their latency is
not a user's: ``raw loop`` shows how long a batch takes from consumed to produced, the worker
and Faust rows none.  The latency budget is judged on the paced end-to-end row.

    .venv/bin/python bench/compare.py      # about 6 minutes
    .venv/bin/python bench/compare.py --shots 20000 --rate 1000 --demo-shots 10000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import api_load
import faust_ceiling
import httpx
import numpy as np
import orjson
import pandas as pd
import stream_throughput
import throwaway
from rich.console import Console

from parivision.cli.processes import _child_env, start_process, stop_process
from parivision.rows import row_to_shot
from parivision.settings import Settings

console = Console(stderr=True)


def percentiles_ms(seconds: list[float]) -> tuple[float | None, float | None]:
    if not seconds:
        return None, None
    values = np.asarray(seconds) * 1000.0
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


# ---------------------------------------------------------------------------- the raw loop


def raw_loop(settings: Settings, shots: int) -> dict[str, Any]:
    """Consume attempts and outcomes, score and label them as the worker does, produce the
    records; until ``shots`` labelled records are out.  No Faust, no changelog tables."""
    from confluent_kafka import Consumer

    from models.online import checkpoint_path
    from models.registry import load_champion
    from parivision import schemas
    from streams.flow import ShotFlow
    from streams.learners import learner_names
    from streams.output import Output
    from streams.scoring import Scorer, load_checkpoint
    from streams.validate import InvalidRecord, parse_attempt, parse_outcome

    scorer = Scorer(
        load_champion(settings),
        learners=learner_names(settings),
        window=settings.metrics_window,
    )
    load_checkpoint(scorer, checkpoint_path(settings))
    flow = ShotFlow(scorer, players={}, seen={}, wait_s=settings.form_wait_s)
    output = Output(settings.kafka())
    attempts_topic = settings.topic(schemas.ATTEMPTS)
    scored_topic = settings.topic(schemas.SCORED)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka(),
            "group.id": f"raw-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([attempts_topic, settings.topic(schemas.OUTCOMES)])
    labelled, invalid, first, batches = 0, 0, None, []
    next_expire = time.monotonic() + 1.0
    while labelled < shots:
        messages = consumer.consume(settings.batch_size, timeout=settings.batch_within_s)
        if time.monotonic() > next_expire:
            flow.expire()
            next_expire = time.monotonic() + 1.0
        if not messages:
            continue
        started = time.perf_counter()
        first = first or started
        for message in messages:
            if message.error():
                continue
            is_attempt = message.topic() == attempts_topic
            try:
                record = (parse_attempt if is_attempt else parse_outcome)(message.value())
            except InvalidRecord:
                invalid += 1
                continue
            at = message.timestamp()[1] / 1000.0
            if is_attempt:
                flow.attempt(record, message.key(), message.partition(), at)
            else:
                flow.outcome(record, message.key(), message.partition(), at)
        for key, record in flow.finish():
            labelled += record["labelled"]
            output.send(scored_topic, key, orjson.dumps(record))  # as the worker encodes
        output.flush()
        consumer.commit(asynchronous=True)
        batches.append(time.perf_counter() - started)
    seconds = time.perf_counter() - first
    consumer.close()
    p50, p99 = percentiles_ms(batches)
    return {"shots": labelled, "seconds": seconds, "p50_ms": p50, "p99_ms": p99, "bad": invalid}


def raw_loop_child(settings: Settings, endpoints, shots: int) -> dict[str, Any]:
    """The raw loop in a process of its own, as the worker runs in one."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", "raw", "--shots", str(shots)],
        env=_child_env(settings, endpoints),
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode or not lines:
        raise SystemExit(f"the raw loop failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    return json.loads(lines[-1])


# ------------------------------------------------------------------------------ the API rows


def api_rows(settings, endpoints, pool: list[dict], args) -> dict[str, dict]:
    api = start_process(settings, endpoints, "serve", "compare-api.log")
    url = f"http://127.0.0.1:{settings.api_port}"
    singles = [orjson.dumps(r) for r in pool]
    log = settings.resolved_home() / "logs" / "compare-api.log"
    try:
        api_load.wait_ready(url, singles[0], api, log, 180)
        batches = [
            orjson.dumps({"shots": pool[i : i + args.batch]})
            for i in range(0, len(pool) - args.batch + 1, args.batch)
        ]
        with httpx.Client(base_url=url, timeout=300) as client:
            # Warm-up: every pool player's history loaded once, as a live API has it.
            one_each = list({r["Player ID"]: r for r in pool}.values())
            client.post(
                "/predict/batch",
                content=orjson.dumps({"shots": one_each}),
                headers=api_load.HEADERS,
            ).raise_for_status()
            rows = {}
            for name, path, bodies, size in (
                ("POST /predict (1 shot a request)", "/predict", singles[: args.requests], 1),
                (f"POST /predict/batch ({args.batch:,} a request)", "/predict/batch", batches, 0),
            ):
                size = size or args.batch
                latencies, wall, errors = api_load.run_serial(client, path, bodies, size, 600)
                if errors:
                    raise SystemExit(f"{name}: {errors} requests failed (see {log})")
                p50, p99 = percentiles_ms(latencies)
                rows[name] = {
                    "shots_per_s": len(latencies) * size / wall,
                    "p50_ms": p50,
                    "p99_ms": p99,
                    "latency": "per request",
                }
        return rows
    finally:
        stop_process(api)


# -------------------------------------------------------------------------------- end to end


def end_to_end(settings, endpoints, data: Path, args) -> dict[str, Any]:
    """The demo, paced; its own summary has the latencies and the CPU by process."""
    from parivision.cli.demo import run_demo

    summary = run_demo(
        settings,
        endpoints,
        data=str(data),
        limit=args.demo_shots,
        until_done=True,
        rate=args.rate,
        timeout=900,
        console=console,
    )
    scored, stored = summary["scoring_latency_ms"], summary["stored_latency_ms"]
    outcome = summary["outcome_stored_latency_ms"]
    return {
        "shots_per_s": summary["shots_per_second"],
        "scored_p50_ms": scored.get("p50"),
        "scored_p99_ms": scored.get("p99"),
        "p50_ms": stored.get("p50"),
        "p99_ms": stored.get("p99"),
        "outcome_stored_p50_ms": outcome.get("p50"),
        "outcome_stored_p99_ms": outcome.get("p99"),
        "stored_seen": summary["stored"],
        "complete": summary["complete"],
        "latency": "produce -> stored",
        "cpu_ms_per_shot": {k: v for k, v in summary["cpu_ms_per_shot"].items() if k != "all"},
    }


# ---------------------------------------------------------------------------------------- run


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=throwaway.DATA)
    parser.add_argument("--train-rows", type=int, default=60_000)
    parser.add_argument("--history-rows", type=int, default=20_000)
    parser.add_argument("--shots", type=int, default=20_000, help="shots measured, in game order")
    parser.add_argument("--requests", type=int, default=1_000, help="single POSTs")
    parser.add_argument("--batch", type=int, default=1_000, help="shots a /predict/batch")
    parser.add_argument("--rate", type=float, default=1_000.0, help="end-to-end shots/s")
    parser.add_argument("--demo-shots", type=int, default=10_000)
    parser.add_argument(
        "--only",
        default="api,raw,faust,worker,e2e",
        help="comma-separated rows to run (api, raw, faust, worker, e2e); the ratios need raw",
    )
    parser.add_argument("--keep-home", action="store_true")
    parser.add_argument("--child", choices=["raw"], help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.child == "raw":
        print(json.dumps(raw_loop(Settings(), args.shots)), flush=True)
        return

    from infra.services import up

    home = Path(tempfile.mkdtemp(prefix="parivision-bench-compare-"))
    settings = Settings(
        home=home,
        kafka_port=throwaway.free_port(),
        kafka_controller_port=throwaway.free_port(),
        mongodb_port=throwaway.free_port(),
        api_port=throwaway.free_port(),
        mongodb_database="compare",
        stream_metrics_port=0,
        sink_metrics_port=0,
        replay_metrics_port=0,
    )
    rows: dict[str, dict] = {}
    try:
        history_raw, pool = throwaway.read_windows(args.data, args.train_rows, args.shots)
        history = [row_to_shot(r) for r in history_raw]
        shots, made = [s for s, _ in history], [m for _, m in history]
        endpoints = up(settings, console)
        version = throwaway.train_champion(settings, shots, made)
        model_name = settings.registered_model()  # rows on topics of their own score with it
        keep = min(args.history_rows, len(shots))
        throwaway.store_history(settings, shots[-keep:], made[-keep:], version)
        data = home / "shots.csv"
        pd.DataFrame(pool).to_csv(data, index=False)

        only = set(args.only.split(","))
        if "api" in only:
            console.print("[bold]the API[/]")
            rows.update(api_rows(settings, endpoints, pool, args))

        if "raw" in only:
            console.print("[bold]the raw loop[/]")
            own = {"topic_prefix": f"raw{uuid.uuid4().hex[:6]}.", "model_name": model_name}
            raw_settings = settings.model_copy(update=own)
            _fill(raw_settings, data, args.shots)
            raw = raw_loop_child(raw_settings, endpoints, args.shots)
            rows[RAW_LOOP] = {
                "shots_per_s": raw["shots"] / raw["seconds"],
                "p50_ms": raw["p50_ms"],
                "p99_ms": raw["p99_ms"],
                "latency": "a batch, consumed -> produced",
            }

        if "faust" in only:
            console.print("[bold]bare Faust[/]")
            tag = uuid.uuid4().hex[:8]
            topics = [f"ceiling{tag}.a", f"ceiling{tag}.b"]
            faust_ceiling.fill(endpoints.kafka, topics, 2 * args.shots)
            for reader, name in (
                ("faust_default", "bare Faust, default settings (decode only)"),
                ("faust_settings", "bare Faust, the stream's settings (decode only)"),
                ("faust_tuned", "bare Faust, tuned: the stream's settings + eager hand-off"),
            ):
                result = faust_ceiling.in_child(reader, endpoints.kafka, topics, 2 * args.shots)
                rows[name] = {"shots_per_s": result["events"] / 2 / result["seconds"]}

        for workers in (1, 2) if "worker" in only else ():
            console.print(f"[bold]the worker, {workers} process(es)[/]")
            result = stream_throughput.run(
                settings,
                endpoints,
                str(data),
                SimpleNamespace(shots=args.shots, batch_size=settings.batch_size, file_order=False),
                workers,
            )
            rows[f"worker, {workers} process{'es' if workers > 1 else ''}"] = {
                "shots_per_s": result["shots_per_second"]
            }

        if "e2e" in only:
            console.print(f"[bold]end to end at {args.rate:,.0f} shots/s[/]")
            e2e = end_to_end(settings, endpoints, data, args)
            rows[f"end-to-end demo at {args.rate:,.0f} shots/s (produce -> stored)"] = e2e
    finally:
        throwaway.clean_up(settings, home, keep=args.keep_home)
    report(args, rows)


def _fill(settings: Settings, data: Path, shots: int) -> None:
    """The shots and their outcomes on fresh topics, at once (a backlog)."""
    from parivision.sources.csv_source import CsvSource
    from parivision.topics import ensure_topics
    from producers.pacing import MaxPacer
    from producers.replay import replay

    ensure_topics(settings)
    replay(settings, CsvSource(str(data)), pacer=MaxPacer(), limit=shots, outcome_delay_s=0.0)


RAW_LOOP = "raw loop (confluent-kafka, same work)"


def report(args, rows: dict[str, dict]) -> None:
    reference = rows[RAW_LOOP]["shots_per_s"] if RAW_LOOP in rows else None
    fmt = lambda v: "" if v is None else f"{v:,.1f}"  # noqa: E731
    print(
        f"\n{args.shots:,} real shots (nba_shots.csv, game order); end to end: the first "
        f"{args.demo_shots:,} at {args.rate:,.0f} shots/s\n"
    )
    print("| path | shots/s | p50 ms | p99 ms | latency of | of raw loop |")
    print("|---|---:|---:|---:|---|---:|")
    for name, row in rows.items():
        print(
            f"| {name} | {row['shots_per_s']:,.0f} | {fmt(row.get('p50_ms'))} | "
            f"{fmt(row.get('p99_ms'))} | {row.get('latency', '')} | "
            f"{'' if reference is None else format(row['shots_per_s'] / reference, '.3f')} |"
        )
    e2e = next((row for name, row in rows.items() if name.startswith("end-to-end")), None)
    if e2e is None:
        print(json.dumps({"bench": "compare", "shots": args.shots, "rows": rows}))
        return
    print(
        f"\nend to end, produce -> scored: p50 {fmt(e2e['scored_p50_ms'])} ms, "
        f"p99 {fmt(e2e['scored_p99_ms'])} ms"
    )
    cpu = e2e["cpu_ms_per_shot"]
    total = sum(cpu.values())
    print("\nend to end, CPU per shot by process (what 1,000 shots/s would take):\n")
    print("| process | CPU ms a shot (= cores busy at 1,000 shots/s) |")
    print("|---|---:|")
    for kind, ms in sorted(cpu.items(), key=lambda item: -item[1]):
        print(f"| {kind} | {ms:.2f} |")
    print(f"| all | {total:.2f} (this machine has {os.cpu_count()} cores) |")
    print(json.dumps({"bench": "compare", "shots": args.shots, "rows": rows}))


if __name__ == "__main__":
    main()
