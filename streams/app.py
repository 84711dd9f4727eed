"""The Faust worker's app: ``create_app`` assembles the parts, each in its own module.

Shots are processed in micro-batches: features and the champion's predictions are computed for the
whole batch at once, which is what makes tens of thousands of shots per second possible in one
Python process.

- :mod:`streams.tables`: the players' and seen tables, and their changelogs;
- :mod:`streams.flow`: each player's shots in order, the form computed as in batch work;
- :mod:`streams.agents`: the agent reading attempts and outcomes, micro-batch by micro-batch;
- :mod:`streams.publishing`: a batch's records, then its table changes, before it is acknowledged;
- :mod:`streams.overdue`: held attempts released when their outcome is overdue;
- :mod:`streams.watcher`: the champion swapped without a restart when ``models.events`` says;
- :mod:`streams.learners`: the online learners' checkpoint;
- :mod:`streams.gauges`: the worker's Prometheus gauges and logged metrics;
- :mod:`streams.worker`: running the app, and stopping it in time.
"""

from __future__ import annotations

import logging
from typing import Any

import faust

from models.registry import Champion
from parivision import schemas
from parivision.metrics import STREAM, for_job
from parivision.settings import Settings
from parivision.topics import replication_factor
from streams import committed, fetching, handoff, offsets, slots, transactions
from streams.agents import ShotAgent
from streams.flow import ShotFlow
from streams.gauges import WorkerGauges
from streams.learners import LearnerCheckpoints, learner_names
from streams.output import Output
from streams.overdue import OverdueRelease
from streams.publishing import BatchPublisher
from streams.scoring import Scorer
from streams.tables import MAX_ENTRY_BYTES, add_tables, at_partition
from streams.watcher import ChampionWatcher

log = logging.getLogger("parivision.stream")


def consumer_settings(batch_size: int) -> dict[str, Any]:
    """How the worker fetches and buffers its input (``bench/faust_ceiling.py`` measures these
    against Faust's defaults)."""
    return {
        "consumer_max_fetch_size": MAX_ENTRY_BYTES + 64 * 1024,
        # Buffer several micro-batches deep, so the agent never waits on a round trip to the
        # broker between two batches.
        "stream_buffer_maxsize": max(8 * batch_size, 8192),
        # At most this many records a poll.  Faust stops fetching a partition whose buffer is
        # nearly full, but hands on all of a poll first; uncapped, a poll from a backlog held
        # the whole topic, the buffer stayed full, and each further record took Faust's slow
        # way in (four asyncio tasks and a wait: a tenth of the worker's time).  A bare Faust
        # agent, which never fills its buffer, is a tenth slower with the cap
        # (bench/faust_ceiling.py); the worker from a backlog is faster (bench/compare.py).
        "broker_max_poll_records": 4 * batch_size,
    }


def create_app(settings: Settings, champion: Champion, *, learner: str | None = None) -> faust.App:
    """Build the worker's app around a loaded champion (nothing connects until it runs).

    The learners' checkpoint, if there is one, is read here, before anything is scored; so is
    the cluster's replication factor when ``settings.kafka_replication_factor`` is 0 (the
    tables' changelogs get as many copies as the topics :func:`ensure_topics` creates).
    """
    replicas = settings.kafka_replication_factor or replication_factor(settings)
    app = _faust_app(settings, replicas)
    scorer = Scorer(
        champion, learners=learner_names(settings, learner), window=settings.metrics_window
    )
    app.scorer = scorer  # for tests and the metrics timer
    metrics = for_job(STREAM)
    metrics["model_loads"].labels(outcome="ok").inc()  # the champion it starts with
    app.metrics = metrics  # served by the CLI (`parivision stream`) on stream_metrics_port
    learners = LearnerCheckpoints(settings, scorer)

    attempts_topic = settings.topic(schemas.ATTEMPTS)
    outcomes_topic = settings.topic(schemas.OUTCOMES)
    if settings.processing_guarantee == "exactly_once":
        group = settings.stream_group()
        slot = slots.claim_slot(settings.resolved_home(), group)
        output: Output = transactions.TransactionalOutput(
            settings.kafka(), slots.transactional_id(group, slot)
        )
        committed.read_committed(app)
        committed.no_offset_commits(app)
        committed.install_recovery(app, settings.kafka())
    else:
        output = Output(settings.kafka())
    app.output = output  # streams.worker.run_worker starts its transactions
    # Faust can commit offsets of these topics it never handed on after a rebalance.
    offsets.guard(
        app.consumer, (attempts_topic, outcomes_topic), lambda: app.consumer_generation_id
    )
    handoff.eager(app.consumer)  # no four tasks per message (streams.handoff)
    fetching.wait_for_records(app.consumer, settings.stream_fetch_wait_ms)

    # Each player's form, held attempts, predictions waiting for their outcome and outcomes
    # that overtook their attempt, in one entry; and the shots joined long ago (see streams.flow).
    tables = add_tables(app, settings.partitions, replicas)
    flow = ShotFlow(
        scorer,
        players=tables["players"],
        seen=tables["seen"],
        scope=at_partition(tables),
        wait_s=settings.form_wait_s,
        warm=_warm_form(settings),
    )
    app.flow = flow  # for tests

    publisher = BatchPublisher(app, settings, flow, tables, output, metrics)
    agent = ShotAgent(settings, flow, publisher, metrics)
    app.agent(app.topic(attempts_topic, outcomes_topic), name="score-shots")(agent.score_shots)
    overdue = OverdueRelease(app, settings, flow, publisher, metrics)
    app.timer(interval=1.0)(overdue.release_overdue)
    app.on_partitions_revoked.connect(agent.on_revoked)
    app.on_partitions_assigned.connect(agent.on_assigned)

    watcher = ChampionWatcher(settings, scorer, metrics=metrics)
    app.champion_watcher = watcher  # for tests
    app.task(watcher.run)
    app.task(publisher.learn_topics)
    app.task(watcher.describe_first_champion)

    gauges = WorkerGauges(app, settings, scorer, flow, metrics)
    app.timer(interval=2.0)(gauges.update_gauges)
    app.timer(interval=10.0)(gauges.report_metrics)

    app.task(publisher.announce_guarantee)
    app.task(learners.announce)
    app.timer(interval=min(1.0, settings.online_checkpoint_s))(learners.save_learners)
    app.on_before_shutdown.connect(learners.save_learners_at_stop)
    return app


def _faust_app(settings: Settings, replicas: int) -> faust.App:
    """The Faust app the worker runs: raw input, in-memory tables, no web server."""
    brokers = [f"kafka://{server.strip()}" for server in settings.kafka().split(",")]
    # Faust keeps per-app files in its data folder and creates only the last level of it.
    datadir = settings.resolved_home() / "faust" / f"{settings.stream_group()}-data"
    datadir.parent.mkdir(parents=True, exist_ok=True)
    return faust.App(
        settings.stream_group(),
        broker=brokers,
        store="memory://",
        datadir=str(datadir),
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.partitions,
        topic_replication_factor=replicas,
        topic_disable_leader=True,
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=6.0,
        broker_heartbeat_interval=1.0,
        # The tables' changes, sent after the batch's scored records (publish_and_wait).  No
        # linger cost more than it saved: 4.73-5.78 ms a shot in 8,000-shot demos at 250/s
        # against 4.48 with 5 ms, for the same scored latency.
        producer_linger_ms=5,
        producer_max_request_size=MAX_ENTRY_BYTES + 64 * 1024,
        stream_recovery_delay=0.0,
        **consumer_settings(settings.batch_size),
    )


def _warm_form(settings: Settings) -> dict[str, Any]:
    """Players' form to start from (``settings.form_history``), or none."""
    if not settings.form_history:
        return {}
    from models.data import warm_form

    warm, history_shots = warm_form(settings.form_history)
    log.info(
        "player form warm-started from %s: %d players, %d shots (a player the tables "
        "already hold carries on from there)",
        settings.form_history,
        len(warm),
        history_shots,
    )
    return warm
