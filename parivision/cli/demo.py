"""``parivision demo``: the whole pipeline in one command, on real services.

The stream worker and the sink run as their own processes, exactly as they would in production;
this process replays the shots and watches Kafka and MongoDB until every shot is scored and
stored.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient
from pymongo import MongoClient
from rich.console import Console
from rich.table import Table

from models import registry
from parivision import schemas
from parivision.cli.children import child_env, stop_all
from parivision.cli.common import announce
from parivision.cli.watching import CpuSampler, ScoredCounter, StoredCounts, percentiles
from parivision.settings import Settings
from parivision.store import RETRAIN_EVENTS
from parivision.topics import end_offsets, ensure_topics


class DemoError(RuntimeError):
    pass


# The demo's retrain loop challenges the champion after this many new labelled shots (unless
# PARIVISION_RETRAIN_MIN_NEW_LABELLED says otherwise): a 20,000-shot demo sees one challenge.
DEMO_RETRAIN_EVERY = 10_000
DEMO_RETRAIN_POLL_S = 5.0


def retrain_settings(settings: Settings) -> Settings:
    """The settings the demo's retrain loop runs with: a count trigger a demo reaches."""
    update = {"retrain_poll_s": DEMO_RETRAIN_POLL_S}
    if "PARIVISION_RETRAIN_MIN_NEW_LABELLED" not in os.environ:
        update["retrain_min_new_labelled"] = DEMO_RETRAIN_EVERY
    return settings.model_copy(update=update)


def challenges_since(settings: Settings, since: float) -> list[dict[str, Any]]:
    """The retrain loop's challenges started after ``since``: why, and what was decided."""
    db = MongoClient(settings.mongodb(), serverSelectionTimeoutMS=5000)[settings.database()]
    out = []
    for event in db[RETRAIN_EVENTS].find({"at": {"$gte": since}}, {"_id": 0}).sort("at", 1):
        decision = event.get("decision") or {}
        out.append(
            {
                "reason": event.get("reason"),
                "status": event.get("status"),
                "challenger": (event.get("training") or {}).get("version"),
                "decision": decision.get("reason") or event.get("error") or event.get("waiting"),
                "champion_after": decision.get("version"),
                # A challenger in shadow, then its verdict on live shots (models.promotion).
                **({"shadow": event["shadow"]} if event.get("shadow") else {}),
            }
        )
    return out


def _child_env(settings: Settings, endpoints) -> dict[str, str]:
    """The environment for a child process: every setting of ours, services pinned to the
    endpoints already running (so the child never starts its own)."""
    env = child_env(dict(os.environ))
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"PARIVISION_{name.upper()}"] = str(value)
    env.update(
        {
            "PARIVISION_HOME": str(settings.resolved_home()),
            "PARIVISION_KAFKA_BOOTSTRAP": endpoints.kafka,
            "PARIVISION_MONGODB_URI": endpoints.mongodb,
            "PARIVISION_MLFLOW_TRACKING_URI": endpoints.mlflow,
        }
    )
    return env


def start_process(settings: Settings, endpoints, command: str, log_name: str) -> subprocess.Popen:
    logs = settings.deployment_dir("logs")
    logs.mkdir(parents=True, exist_ok=True)
    log = open(logs / log_name, "ab")  # noqa: SIM115 - lives as long as the child
    return subprocess.Popen(
        [sys.executable, "-m", "parivision", command],
        env=_child_env(settings, endpoints),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_process(process: subprocess.Popen, timeout: float = 20.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_for_group(
    settings: Settings, group: str, processes: dict[str, subprocess.Popen], timeout: float = 120.0
) -> None:
    """Wait until a consumer group is stable with members, i.e. its worker really consumes."""
    admin = AdminClient({"bootstrap.servers": settings.kafka()})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _check_alive(settings, processes)
        try:
            description = admin.describe_consumer_groups([group])[group].result(timeout=10)
            if description.members and str(description.state).endswith("STABLE"):
                return
        except Exception:  # group not known yet
            pass
        time.sleep(0.5)
    raise DemoError(f"consumer group {group!r} did not become ready in {timeout:.0f}s")


def _check_port_free(settings: Settings) -> None:
    import socket

    with socket.socket() as probe:
        # As uvicorn binds it: connections of a previous run in TIME_WAIT do not hold the port
        # (without this a demo started within a minute of the last one refused to start).
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((settings.api_host, settings.api_port))
        except OSError as error:
            raise DemoError(
                f"the live API's port {settings.api_host}:{settings.api_port} is taken ({error}): "
                "stop what holds it, or set PARIVISION_API_PORT"
            ) from None


def wait_for_api(
    settings: Settings, base: str, processes: dict[str, subprocess.Popen], timeout: float = 120.0
) -> None:
    """Wait until the API answers and follows ``shots.scored``, so the page sees every shot."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _check_alive(settings, processes)
        try:
            if httpx.get(f"{base}health", timeout=5).json()["live"]["following"]:
                return
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        time.sleep(0.5)
    raise DemoError(f"the live API at {base} did not become ready in {timeout:.0f}s")


def live_messages_seen(base: str, *, want: int, timeout: float = 15.0) -> int:
    """How many ``shots.scored`` records the live API has passed on (waiting a little for it
    to reach ``want``: it follows the topic on its own)."""
    import httpx

    deadline, seen = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            seen = int(httpx.get(f"{base}health", timeout=5).json()["live"]["read"])
        if seen >= want:
            break
        time.sleep(0.5)
    return seen


def _check_alive(settings: Settings, processes: dict[str, subprocess.Popen]) -> None:
    for name, process in processes.items():
        if process.poll() is not None:
            log = settings.deployment_dir("logs") / f"demo-{name}.log"
            raise DemoError(
                f"the {name} process exited with code {process.returncode}; "
                f"last lines of {log}:\n{_tail(log)}"
            )


def ensure_champion(settings: Settings, data: str | None, console: Console) -> str:
    """The champion's version; one is trained first if there is none, or if it was trained on
    another feature set."""
    current = registry.champion_version(settings)
    stale = registry.stale_feature_set(settings, current) if current else None
    if current is None or stale:
        from models.data import training_frame
        from models.lineage import lineage_of
        from models.train import train_and_register

        why = f"{stale}, so" if stale else "no champion yet:"
        console.print(f"{why} training one on {data or 'synthetic shots'}")
        frame, name = training_frame(data)
        trained = train_and_register(
            settings,
            frame,
            data_name=name,
            candidates=["lightgbm"],
            lineage=lineage_of([data] if data else None),
            console=console,
        )
        console.print(
            f"champion: {settings.registered_model()} v{trained.version} "
            f"(validation log loss {trained.metrics['log_loss']:.4f}, "
            f"AUC {trained.metrics['roc_auc']:.3f})"
        )
    return registry.champion_version(settings)


def run_demo(
    settings: Settings,
    endpoints,
    *,
    data: str | None,
    limit: int,
    until_done: bool,
    since: int | None = None,
    until: int | None = None,
    rate: float | None,
    timeout: float,
    console: Console,
) -> dict[str, Any]:
    from parivision.metrics import REPLAY, for_job
    from parivision.sources import open_source
    from producers.pacing import make_pacer
    from producers.replay import replay

    ensure_topics(settings)
    demo_started = time.time()
    processes: dict[str, subprocess.Popen] = {}
    page = f"http://{settings.api_host}:{settings.api_port}/"
    _check_port_free(settings)
    processes["api"] = start_process(settings, endpoints, "serve", "demo-api.log")
    console.print(
        f"[bold]live court page: {page}[/] (open it now to watch the shots arrive; "
        f"OpenAPI at {page}docs)"
    )
    try:
        version = ensure_champion(settings, data, console)
    except BaseException:
        stop_process(processes["api"])
        raise

    replay_id = uuid.uuid4().hex[:12]
    counter = None
    try:
        processes["stream"] = start_process(settings, endpoints, "stream", "demo-stream.log")
        processes["sink"] = start_process(settings, endpoints, "sink", "demo-sink.log")
        retrain = retrain_settings(settings)
        processes["retrainer"] = start_process(
            retrain, endpoints, "retrain-loop", "demo-retrain.log"
        )
        wait_for_group(settings, settings.stream_group(), processes)
        wait_for_group(settings, settings.sink_consumer_group(), processes)
        wait_for_api(settings, page, processes)
        dlq_before = end_offsets(settings, settings.topic(schemas.DLQ))
        counter = ScoredCounter(settings, replay_id)
        counter.start()
        cpu = CpuSampler(settings.resolved_home())
        cpu.start()
        replay_started = time.time()
        started = time.perf_counter()
        replay_metrics = for_job(REPLAY)
        with contextlib.suppress(OSError):  # a busy port costs the replay's metrics, not the demo
            if replay_metrics.serve(settings.metrics_host, settings.replay_metrics_port):
                announce(settings, REPLAY, settings.replay_metrics_port)
        stats = replay(
            settings,
            open_source(data, limit=limit, since=since, until=until),
            pacer=make_pacer(rate=rate),
            limit=limit,
            replay_id=replay_id,
            console=console,
            metrics=replay_metrics,
        )
        replay_metrics.close()
        produced = stats.produced
        stored_counts = StoredCounts(settings, replay_id, since=replay_started)
        done = None
        deadline = time.monotonic() + timeout
        with console.status("waiting for every shot to be scored and stored") as status:
            while True:
                _check_alive(settings, processes)
                scored_all = done is None and len(counter.scored) >= produced
                if scored_all and (stored_counts.sink_stored() or 0) >= produced:
                    # The work is done: stop the clock and the CPU count before the store is
                    # asked to confirm it (a count is work for the store too).
                    done = time.perf_counter()
                    cpu.stop()
                stored = stored_counts.look(produced)
                status.update(
                    f"scored {len(counter.scored)}/{produced}, stored {stored}/{produced}"
                )
                if len(counter.scored) >= produced and stored >= produced:
                    break
                if until_done and time.monotonic() > deadline:
                    console.print(f"[red]gave up after {timeout:.0f}s[/]")
                    break
                time.sleep(stored_counts.pause())
        if done is None:
            done = time.perf_counter()
            cpu.stop()
        seconds = done - started
        if min(stored_counts.counts.values()) < produced:
            stored_counts.look(0)  # gave up: every layer's count, for the summary
        counts = stored_counts.counts
        stored_latency_ms = {
            key: percentiles(values) for key, values in stored_counts.latencies_ms().items()
        }
        stored_counts.close()
        seen_live = live_messages_seen(page, want=2 * produced)
        challenges = wait_for_challenge(
            settings,
            demo_started,
            expected=len(counter.labelled) >= retrain.retrain_min_new_labelled > 0,
            processes=processes,
            timeout=timeout,
            console=console,
        )
        dead_lettered = end_offsets(settings, settings.topic(schemas.DLQ)) - dlq_before
        stored = min(counts.values())
        summary = {
            "replay_id": replay_id,
            "data": data or "synthetic",
            "model_version": version,
            "produced": produced,
            "scored": len(counter.scored),
            "labelled": len(counter.labelled),
            "stored": stored,
            "stored_by_layer": counts,
            "dead_lettered": dead_lettered,
            "bad_rows": stats.bad_rows,
            "seconds": round(seconds, 2),
            "scoring_latency_ms": percentiles(counter.latencies_ms),
            "stored_latency_ms": stored_latency_ms["stored"],
            "outcome_stored_latency_ms": stored_latency_ms["outcome_stored"],
            "cpu_ms_per_shot": cpu.ms_per_shot(produced),
            "shots_per_second": round(produced / seconds, 1) if seconds else 0.0,
            "outcome_delay_s": settings.outcome_delay_s,
            "outcome_timing": settings.outcome_timing,
            "page": page,
            "live_feed_messages": seen_live,
            "challenges": challenges,
            "monitoring": dict(getattr(endpoints, "monitoring", {}) or {}),
            "complete": stored >= produced and len(counter.scored) >= produced,
        }
        table = Table(title="PariVision demo")
        for key in (
            "produced",
            "scored",
            "labelled",
            "stored",
            "dead_lettered",
            "seconds",
            "shots_per_second",
            "model_version",
            "page",
        ):
            table.add_row(key, str(summary[key]))
        for key in ("scoring_latency_ms", "stored_latency_ms", "outcome_stored_latency_ms"):
            if summary[key]:
                table.add_row(key, f"p50 {summary[key]['p50']:,}, p99 {summary[key]['p99']:,}")
        cpu_ms = summary["cpu_ms_per_shot"]
        by_process = ", ".join(f"{k} {v:.2f}" for k, v in cpu_ms.items() if k != "all")
        table.add_row("cpu_ms_per_shot", f"{cpu_ms['all']:.2f} ({by_process})")
        for challenge in challenges:
            table.add_row(
                "challenge",
                f"{challenge['reason']}: "
                + (f"v{challenge['challenger']} " if challenge["challenger"] else "")
                + f"{challenge['status']} ({challenge['decision']})",
            )
        console.print(table)
        if not until_done:
            console.print(
                "pipeline drained; press Ctrl-C (or send SIGTERM) to stop the API, the stream, "
                "the sink and the retrain loop"
            )
            try:
                while True:
                    _check_alive(settings, processes)
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
    finally:
        if counter is not None:
            counter.stop_event.set()
        # All at once, within the worker's stop deadline (streams.worker.STOP_TIMEOUT_S).
        stop_all(processes.values(), timeout=35.0)

    return summary


def wait_for_challenge(
    settings: Settings,
    since: float,
    *,
    expected: bool,
    processes: dict[str, subprocess.Popen],
    timeout: float,
    console: Console,
) -> list[dict[str, Any]]:
    """The challenges of this demo, once each is decided; when its labelled shots reached the
    count trigger, at least one (the loop trains and challenges while the replay runs)."""
    deadline = time.monotonic() + timeout
    with console.status("waiting for the retrain loop to decide its challenge"):
        while True:
            challenges = challenges_since(settings, since)
            running = [c for c in challenges if c["status"] in ("started", None)]
            # Every challenge decided, and at least one when the count trigger was reached.
            if not running and (challenges or not expected):
                return challenges
            if time.monotonic() > deadline:
                return challenges
            _check_alive(settings, processes)
            time.sleep(1.0)
