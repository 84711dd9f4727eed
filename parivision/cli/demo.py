"""``parivision demo``: the whole pipeline in one command, on real services.

The stream worker and the sink run as their own processes, exactly as they would in production;
this process replays the shots and watches Kafka and MongoDB until every shot is scored and
stored.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import uuid
from typing import Any

from rich.console import Console

from models import registry
from parivision import schemas
from parivision.cli.children import stop_all
from parivision.cli.common import announce
from parivision.cli.demo_report import live_messages_seen, print_summary, wait_for_challenge
from parivision.cli.processes import (
    check_alive,
    check_port_free,
    start_process,
    stop_process,
    wait_for_api,
    wait_for_group,
)
from parivision.cli.watching import CpuSampler, ScoredCounter, StoredCounts, percentiles
from parivision.settings import Settings
from parivision.topics import end_offsets, ensure_topics

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
    check_port_free(settings)
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
                check_alive(settings, processes)
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
        print_summary(console, summary)
        if not until_done:
            console.print(
                "pipeline drained; press Ctrl-C (or send SIGTERM) to stop the API, the stream, "
                "the sink and the retrain loop"
            )
            try:
                while True:
                    check_alive(settings, processes)
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
    finally:
        if counter is not None:
            counter.stop_event.set()
        # All at once, within the worker's stop deadline (streams.worker.STOP_TIMEOUT_S).
        stop_all(processes.values(), timeout=35.0)

    return summary
