"""The Faust worker: validate, score with the champion, keep predictions, join outcomes.

Shots are processed in micro-batches (``take_events``): features and the champion's predictions
are computed for the whole batch at once, which is what makes tens of thousands of shots per
second possible in one Python process.

Both input topics are keyed by player id and have the same partition count, and one agent reads
both, so a player's attempts and outcomes all come to the same worker, in order per topic, where
:class:`streams.flow.ShotFlow` keeps the player's form and holds an attempt until the outcomes of
the player's earlier shots are in.

The champion is swapped without a restart when ``models.events`` says it changed (see
:class:`ChampionWatcher`).

The online learners (``Settings.online_learners``) are saved to :func:`checkpoint_path` every
``online_checkpoint_every`` labelled shots or ``online_checkpoint_s`` seconds and when the worker
stops, and restored when it starts.  The file is per worker group, not per worker: with several
workers each learns from its own partitions and the last one to save wins; a worker that starts
takes whatever was saved last.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import faust
import orjson
from faust.serializers import codecs
from faust.types import TP

from models.online import checkpoint_path
from models.registry import Champion
from parivision import schemas
from parivision.dlq import dead_letter
from parivision.metrics import STREAM, Metrics, for_job
from parivision.settings import Settings
from parivision.topics import replication_factor, topic_config
from streams import committed, fetching, handoff, offsets, slots, transactions
from streams.faults import crash_point
from streams.flow import ShotFlow
from streams.output import Output
from streams.scoring import Scorer, load_checkpoint, save_checkpoint
from streams.validate import InvalidRecord, parse_attempt, parse_outcome
from streams.watcher import REGISTRY_RECHECK_S, ChampionWatcher, describe_champion

__all__ = [
    "REGISTRY_RECHECK_S",
    "ChampionWatcher",
    "create_app",
    "describe_champion",
    "run_worker",
]

log = logging.getLogger("parivision.stream")


class _Orjson(codecs.Codec):
    """JSON through orjson: the same documents as the json codec (it reads what that one wrote,
    and the other way round) at a fraction of the cost.  Encoding the players' changelog entries
    and the scored records with the standard library was a sixth of the worker's time."""

    def _dumps(self, obj: Any) -> bytes:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)

    def _loads(self, s: bytes) -> Any:
        return orjson.loads(s)


codecs.register("orjson", _Orjson())

# A timer tick this late means the worker's loop was blocked: it read nothing meanwhile.
STALL_S = 5.0


class _HeldMessage(NamedTuple):
    partition: int | None


class _HeldChange(NamedTuple):
    message: _HeldMessage


class EventPartitionTable(faust.Table):
    """A table whose changelog partition is the partition of the shot's own event.

    Faust takes the changelog partition from the *current* event, which inside a micro-batch is
    the last one buffered, not the one whose key is being written.  Writing each key under its
    own event's partition keeps recovery and rebalancing correct.
    """

    _explicit_partition: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        # (partition, key) -> the change's value and serializers, until release().
        self._held: dict[tuple[int | None, Any], tuple[Any, Any, Any]] = {}

    def send_changelog(
        self,
        partition: int | None,
        key: Any,
        value: Any,
        key_serializer: Any = None,
        value_serializer: Any = None,
    ) -> _HeldChange:
        """Hold the change until :meth:`release`: only the last one of a key is sent.

        A change must not reach the broker before the scored or labelled record of the batch
        that made it (a kill -9 between the two would lose that record: the worker that
        recovers the table finds the join done and drops the outcome it reads again), and
        Faust's producer sends table changes as soon as the loop is free.  Holding them lets
        the loop stay free while the batch's records are delivered, and sends one change a
        key a batch instead of one for every write.

        Faust reads only the partition of what this returns (``fut.message.partition``)."""
        self._held[(partition, key)] = (value, key_serializer, value_serializer)
        return _HeldChange(_HeldMessage(partition))

    def release(self) -> list[asyncio.Future]:
        """Send every held change (the last of each key); return the sends to wait for.

        Call it only once the records of every batch that made these changes are delivered:
        they are Faust's to send from here, and a batch is acknowledged only after its sends
        are done (Faust's own flush gives up after 0.1 s without progress, so offsets could
        otherwise be committed before the table changes they depend on)."""
        held, self._held = self._held, {}
        send = super().send_changelog
        return [
            send(partition, key, value, key_serializer, value_serializer)
            for (partition, key), (value, key_serializer, value_serializer) in held.items()
        ]

    def take_held(self) -> list[tuple[str, int | None, Any, Any]]:
        """Take every held change (the last of each key) as the changelog record Faust would
        send: ``(topic, partition, key bytes, value bytes)``, for a transaction to write."""
        held, self._held = self._held, {}
        topic = self.changelog_topic
        name = topic.get_topic_name()
        records = []
        for (partition, key), (value, key_serializer, value_serializer) in held.items():
            key_bytes, _ = topic.prepare_key(key, key_serializer or self.key_serializer)
            value_bytes, _ = topic.prepare_value(value, value_serializer or self.value_serializer)
            records.append((name, partition, key_bytes, value_bytes))
        return records

    @property
    def holding(self) -> int:
        return len(self._held)

    def partition_for_key(self, key: Any) -> int | None:
        if self._explicit_partition is not None:
            return self._explicit_partition
        return super().partition_for_key(key)

    @contextmanager
    def at_partition(self, partition: int) -> Iterator[EventPartitionTable]:
        self._explicit_partition = partition
        try:
            yield self
        finally:
            self._explicit_partition = None


# The tables' changelogs are compacted (Faust creates them so), but Kafka compacts only closed
# segments, and by default a segment closes after a week: every write since would be re-read by a
# restarting worker.  Each shot writes its player's entry and its pending record a few times, so
# a few demo runs already made recovery take 13 s.  Closing segments every minute lets the
# cleaner keep recovery near one record per live key.
# One player's entry holds every prediction still waiting for its outcome.  A replay of one
# player's career at full speed (the Kobe Bryant file) can have thousands of them in flight at
# once, over the 1 MB Kafka takes by default, and a changelog write refused for its size stops
# the worker.  Entries may be this large (about 45,000 waiting shots of one player).
MAX_ENTRY_BYTES = 16 * 1024 * 1024

CHANGELOG_CONFIG = {
    "max.message.bytes": str(MAX_ENTRY_BYTES + 64 * 1024),
    "segment.ms": "60000",
    "min.cleanable.dirty.ratio": "0.1",
    "delete.retention.ms": "60000",
}


def _table(app: faust.App, name: str, partitions: int, replicas: int) -> EventPartitionTable:
    table = EventPartitionTable(
        app,
        name=name,
        default=None,
        beacon=app.tables.beacon,
        partitions=partitions,
        schema=faust.Schema(key_serializer="json", value_serializer="orjson"),
        extra_topic_configs={**CHANGELOG_CONFIG, **topic_config(replicas)},
    )
    return app.tables.add(table)


def learner_names(settings: Settings, learner: str | None = None) -> list[str]:
    """The learners to run: ``settings.online_learners``, with ``learner`` first if given."""
    names = [name.strip() for name in settings.online_learners.split(",") if name.strip()]
    if learner:
        names = [learner, *(name for name in names if name != learner)]
    return names


def consumer_settings(batch_size: int) -> dict[str, Any]:
    """How the worker fetches and buffers its input (``bench/faust_ceiling.py`` measures these
    against Faust's defaults)."""
    return {
        "consumer_max_fetch_size": MAX_ENTRY_BYTES + 64 * 1024,
        # Buffer several micro-batches deep, so the agent never waits on a round trip to the
        # broker between two batches.  No cap on the records a poll returns: one of 2,000 cost
        # a tenth of the bare ceiling (bench/faust_ceiling.py).
        "stream_buffer_maxsize": max(8 * batch_size, 8192),
    }


def create_app(settings: Settings, champion: Champion, *, learner: str | None = None) -> faust.App:
    """Build the worker's app around a loaded champion (nothing connects until it runs).

    The learners' checkpoint, if there is one, is read here, before anything is scored; so is
    the cluster's replication factor when ``settings.kafka_replication_factor`` is 0 (the
    tables' changelogs get as many copies as the topics :func:`ensure_topics` creates).
    """
    replicas = settings.kafka_replication_factor or replication_factor(settings)
    brokers = [f"kafka://{server.strip()}" for server in settings.kafka().split(",")]
    # Faust keeps per-app files in its data folder and creates only the last level of it.
    datadir = settings.resolved_home() / "faust" / f"{settings.stream_group()}-data"
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(
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
    scorer = Scorer(
        champion, learners=learner_names(settings, learner), window=settings.metrics_window
    )
    app.scorer = scorer  # for tests and the metrics timer
    metrics = for_job(STREAM)
    metrics["model_loads"].labels(outcome="ok").inc()  # the champion it starts with
    app.metrics = metrics  # served by the CLI (`parivision stream`) on stream_metrics_port
    checkpoint = checkpoint_path(settings)
    restored = load_checkpoint(scorer, checkpoint)

    attempts_topic = settings.topic(schemas.ATTEMPTS)
    outcomes_topic = settings.topic(schemas.OUTCOMES)
    scored_topic = settings.topic(schemas.SCORED)
    dlq_topic = settings.topic(schemas.DLQ)
    exactly_once = settings.processing_guarantee == "exactly_once"
    if exactly_once:
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
    app.output = output  # run_worker starts its transactions
    # Faust can commit offsets of these topics it never handed on after a rebalance.
    offsets.guard(
        app.consumer, (attempts_topic, outcomes_topic), lambda: app.consumer_generation_id
    )
    handoff.eager(app.consumer)  # no four tasks per message (streams.handoff)
    fetching.wait_for_records(app.consumer, settings.stream_fetch_wait_ms)

    # Each player's form, held attempts, predictions waiting for their outcome and outcomes
    # that overtook their attempt, in one entry; and the shots joined long ago (see streams.flow).
    tables = {
        name: _table(app, name, settings.partitions, replicas) for name in ("players", "seen")
    }

    @contextmanager
    def at_partition(partition: int) -> Iterator[None]:
        with ExitStack() as stack:
            for table in tables.values():
                stack.enter_context(table.at_partition(partition))
            yield

    warm: dict[str, Any] = {}
    if settings.form_history:
        from models.data import warm_form

        warm, history_shots = warm_form(settings.form_history)
        log.info(
            "player form warm-started from %s: %d players, %d shots (a player the tables "
            "already hold carries on from there)",
            settings.form_history,
            len(warm),
            history_shots,
        )
    flow = ShotFlow(
        scorer,
        players=tables["players"],
        seen=tables["seen"],
        scope=at_partition,
        wait_s=settings.form_wait_s,
        warm=warm,
    )
    app.flow = flow  # for tests

    def to_dlq(event: faust.types.EventT, error: InvalidRecord, stage: str) -> None:
        message = event.message
        reason = str(error)
        metrics["dead_letters"].labels(stage=stage, reason=error.code).inc()
        output.send(
            dlq_topic,
            message.key,
            dead_letter(
                event.value,
                reason,
                stage=stage,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                key=message.key,
            ),
        )

    scored, labelled = metrics["scored"], metrics["labelled"]
    score_latency, batch_seconds = metrics["score_latency"], metrics["batch_seconds"]

    def publish() -> int:
        started = time.perf_counter()
        records = flow.finish()
        if records:
            batch_seconds.observe(time.perf_counter() - started)
        for key, record in records:
            if record["labelled"]:
                labelled.inc()
            else:
                scored.inc()
                score_latency.observe(record["latency_ms"] / 1000.0)
            output.send(scored_topic, key, orjson.dumps(record))
        return len(records)

    # Table changes handed to Faust's producer and not yet known to be written.
    in_flight: set[asyncio.Future] = set()

    def group_metadata() -> bytes:
        coordinator = app.consumer._thread._consumer._coordinator
        return transactions.group_metadata(
            settings.stream_group(), coordinator.generation, coordinator.member_id
        )

    async def commit_transaction() -> None:
        """Exactly once: what the batch produced, the tables' changes and the offsets read,
        as one transaction (:mod:`streams.transactions`)."""
        publish()
        assert isinstance(output, transactions.TransactionalOutput)
        for table in tables.values():
            for topic, partition, key, value in table.take_held():
                output.send(topic, key, value, partition)
        await output.commit(group_metadata)

    async def publish_and_wait() -> None:
        """Send what the batch produced and wait until the broker has all of it: first the
        scored records, then the tables' changes.  The batch is acknowledged (and later
        committed) only when this returns, so a crash repeats a batch, never loses one.

        The order matters: a table change that says an outcome was joined must not reach the
        broker before the labelled record it produced, or a kill -9 between the two loses that
        record (``tests/integration/test_crash.py`` caught it).  The tables hold their changes
        (:meth:`EventPartitionTable.send_changelog`) until the records are delivered, so the
        loop stays free meanwhile: a broker that is slow or failing over delays the batch,
        not the worker's heartbeats, metrics, timers or stop."""
        if exactly_once:
            await commit_transaction()
            return
        published = publish()
        await output.drain()
        if published:
            crash_point("records-delivered")
        # Everything published before the drain began is delivered: every held change, this
        # batch's or the timer's meanwhile, was made before its records were published.
        for table in tables.values():
            in_flight.update(table.release())
        if in_flight:
            # asyncio.wait, not gather: a rebalance cancels the agent while it waits here, and
            # gather would cancel the producer's own futures with it (which crashed the worker).
            done, _ = await asyncio.wait(set(in_flight))
            in_flight.difference_update(done)
            for future in done:
                future.result()  # a change the broker refused fails the batch

    consumed_attempts = metrics["consumed"].labels(kind="attempt")
    consumed_outcomes = metrics["consumed"].labels(kind="outcome")

    @app.agent(app.topic(attempts_topic, outcomes_topic), name="score-shots")
    async def score_shots(stream: faust.StreamT) -> None:
        async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
            attempts = 0
            for event in events:
                message = event.message
                if exactly_once:
                    output.consumed(message.topic, message.partition, message.offset)
                is_attempt = message.topic == attempts_topic
                attempts += is_attempt
                try:
                    record = (parse_attempt if is_attempt else parse_outcome)(event.value)
                except InvalidRecord as error:
                    stage = "validate-attempt" if is_attempt else "validate-outcome"
                    to_dlq(event, error, stage)
                    continue
                # The record's Kafka timestamp: held attempts are overdue by the data's time.
                try:
                    if is_attempt:
                        flow.attempt(record, message.key, message.partition, message.timestamp)
                    else:
                        flow.outcome(record, message.key, message.partition, message.timestamp)
                except Exception as error:
                    # A crashed agent would lose its whole batch (Faust acks it as it unwinds):
                    # one record the flow cannot handle goes to the DLQ with why, the rest on.
                    log.exception(
                        "could not process %s at offset %s", message.topic, message.offset
                    )
                    reason = f"processing failed: {type(error).__name__}: {error}"
                    stage = "process-attempt" if is_attempt else "process-outcome"
                    to_dlq(event, InvalidRecord(reason, "processing_error"), stage)
            consumed_attempts.inc(attempts)
            consumed_outcomes.inc(len(events) - attempts)
            await publish_and_wait()

    def settled() -> bool:
        return not app.rebalancing and not getattr(app, "in_recovery", False)

    def owns(partition: int) -> bool:
        return settled() and TP(attempts_topic, partition) in app.assignor.assigned_actives()

    # Since when nothing could be read, and why: the broker did not answer, or a commit of the
    # output (a Kafka transaction) has not returned, the agent waiting for it.
    paused: list[tuple[float, str]] = []
    last_tick: list[float | None] = [None]

    @app.timer(interval=1.0)
    async def release_overdue() -> None:
        # A worker stalled for a while (its loop blocked, a suspended laptop) read nothing
        # meanwhile: start the data's time again.
        now = time.monotonic()
        stalled, last_tick[0] = now - (last_tick[0] or now), now
        if stalled > STALL_S:
            log.warning(
                "the worker read nothing for %.0f s; held attempts wait for what is read now",
                stalled,
            )
            flow.data_clock.resume()
        # Only on a worker whose tables are whole: never release another worker's attempts.
        if not settled():
            return
        # While the broker is away, or a commit hangs (librdkafka's, after a broker came back),
        # nothing is read, and the outcomes held attempts wait for may be sitting in the broker:
        # that time must not count against them (DataClock.resume).
        why = None
        if output.committing_for() > STALL_S:
            why = f"a commit of the output has not returned in {output.committing_for():.0f} s"
        elif not await asyncio.to_thread(output.reachable):
            why = f"the broker at {settings.kafka()} does not answer"
        if why is not None:
            if not paused:
                paused.append((time.monotonic(), why))
                log.warning("%s; nothing is overdue until it does", why)
            return
        if paused:
            since, why = paused.pop()
            log.info(
                "reading again after %.0f s (%s); held attempts wait for what is read now",
                time.monotonic() - since,
                why,
            )
            flow.data_clock.resume()
        released = flow.expire(owns)
        if released:
            metrics["released"].inc(released)
        # A sweep that released nothing may still have changed the tables: their changes go
        # out now, not with whichever batch comes next.
        if released or any(table.holding for table in tables.values()):
            await publish_and_wait()

    @app.on_partitions_revoked.connect
    async def forget_waiting(app: faust.App, revoked: Any, **kwargs: Any) -> None:
        if exactly_once:
            # Still in the old generation: what was read so far is committed before another
            # worker can take these partitions.
            await commit_transaction()
        flow.forget_waiting()
        # A batch cut short by the rebalance may hold table changes: they go to Faust's
        # producer (which flushes on a rebalance) once that batch's records are delivered.
        if any(table.holding for table in tables.values()):
            await output.drain()
            for table in tables.values():
                in_flight.update(table.release())

    @app.on_partitions_assigned.connect
    async def start_data_clock(app: faust.App, assigned: Any, **kwargs: Any) -> None:
        # A partition taken over from a worker that died: its held attempts are overdue by
        # the data read from here on, not by the time the rebalance took.
        flow.assigned({tp.partition for tp in assigned if tp.topic == attempts_topic})

    watcher = ChampionWatcher(settings, scorer, metrics=metrics)
    app.champion_watcher = watcher  # for tests

    @app.task
    async def follow_model_events() -> None:
        await watcher.run()

    @app.task
    async def learn_output_topics() -> None:
        await asyncio.to_thread(output.learn_topics, (scored_topic, dlq_topic))

    @app.task
    async def describe_first_champion() -> None:
        await describe_champion(settings, scorer.champion, metrics)

    group = settings.stream_group()

    @app.timer(interval=2.0)
    async def update_gauges() -> None:
        metrics["held"].set(flow.held_count())
        if "shadow" not in scorer.recent:
            for gauge in ("live_log_loss", "live_roc_auc", "live_brier", "live_window"):
                with contextlib.suppress(KeyError):  # no shadow: no line on the graphs
                    metrics[gauge].remove("shadow")
        for model, quality in list(scorer.recent.items()):
            summary = quality.summary()
            if summary["n"]:
                for name in ("log_loss", "roc_auc", "brier"):
                    metrics[f"live_{name}"].labels(model=model).set(summary[name])
                metrics["live_window"].labels(model=model).set(summary["n"])
        export_lag(metrics, app.consumer, group, (attempts_topic, outcomes_topic))

    @app.timer(interval=10.0)
    async def report_metrics() -> None:
        if scorer.scored:
            log.info("live metrics %s", json.dumps(scorer.live_metrics()))

    @app.task
    async def announce_guarantee() -> None:
        if isinstance(output, transactions.TransactionalOutput):
            log.info("exactly once: one Kafka transaction a batch, as %r", output.transactional_id)

    @app.task
    async def announce_learners() -> None:
        # Logged from here: the worker sets up logging after the app is built.
        if restored:
            what = ", ".join(f"{name} ({n} shots learned)" for name, n in restored.items())
            log.info("online learners restored from %s: %s", checkpoint, what)
        log.info(
            "online learners %s; saved to %s every %d labelled shots or %.0f s and at stop",
            ", ".join(scorer.learners),
            checkpoint,
            settings.online_checkpoint_every,
            settings.online_checkpoint_s,
        )

    saver = _CheckpointSaver(scorer, checkpoint)

    @app.timer(interval=min(1.0, settings.online_checkpoint_s))
    async def save_learners() -> None:
        due = (
            scorer.labelled - saver.saved_at_labelled >= settings.online_checkpoint_every
            or time.monotonic() - saver.saved_monotonic >= settings.online_checkpoint_s
        )
        if due:
            await saver.save("periodic")

    @app.on_before_shutdown.connect
    async def save_learners_at_stop(app: faust.App, **kwargs: Any) -> None:
        await saver.save("worker stop")

    return app


def export_lag(metrics: Metrics, consumer: Any, group: str, topics: tuple[str, ...]) -> None:
    """Consumer lag per assigned partition: the broker's high watermark (as of the last fetch)
    less the next offset this worker will read.  Revoked partitions leave the gauge."""
    lag = metrics["lag"]
    lag.clear()
    try:
        assigned = [tp for tp in consumer.assignment() if tp.topic in topics]
    except Exception:  # not started, or between two assignments
        return
    for tp in assigned:
        try:
            highwater = consumer.highwater(tp)
        except Exception:
            continue
        if highwater is None:
            continue
        # Faust keeps the last offset it handed on, and the last it committed.
        read = consumer._read_offset.get(tp)
        committed = consumer._committed_offset.get(tp)
        behind = highwater - (read + 1 if read is not None else committed or 0)
        lag.labels(group=group, topic=tp.topic, partition=str(tp.partition)).set(max(0, behind))


class _CheckpointSaver:
    """Saves the scorer's learners when something new was learned; never raises."""

    def __init__(self, scorer: Scorer, path: Path) -> None:
        self.scorer = scorer
        self.path = path
        self.saved_at_labelled = 0
        self.saved_monotonic = time.monotonic()

    async def save(self, why: str) -> None:
        self.saved_monotonic = time.monotonic()
        labelled = self.scorer.labelled
        if labelled == self.saved_at_labelled:
            return  # nothing learned since the last save
        # Pickled on the loop, between two batches: one consistent moment. Written in a thread.
        data = self.scorer.learner_state()
        try:
            await asyncio.to_thread(save_checkpoint, data, self.path)
        except OSError as error:
            log.error("could not save the online learners to %s: %s", self.path, error)
            return
        self.saved_at_labelled = labelled
        log.info(
            "online learners saved to %s (%s, %d labelled shots since start; %d KiB): %s",
            self.path,
            why,
            labelled,
            len(data) // 1024,
            ", ".join(f"{name} {n}" for name, n in self.scorer.learned.items()),
        )


# A worker told to stop (SIGINT/SIGTERM) that has not stopped after this long exits anyway.
STOP_TIMEOUT_S = 30.0


def _exit_unless_stopped(app: faust.App, timeout: float) -> None:
    """Exit the process ``timeout`` seconds from now if it is still running then.

    Faust's consumer waits without end for a broker that is gone before it stops (a worker
    told to stop after the broker went away ran on for minutes).  Nothing is lost by exiting
    instead: the batch in hand was not acknowledged, so the next worker reads it again; the
    learners resume from their last checkpoint."""

    def watch() -> None:
        time.sleep(timeout)
        log.error(
            "the worker did not stop within %.0f s of being told to (does the broker at %s "
            "answer?); exiting without the rest of its shutdown: the next worker reads its last "
            "batch again",
            timeout,
            app.conf.broker[0] if app.conf.broker else "?",
        )
        logging.shutdown()
        os._exit(1)

    threading.Thread(target=watch, name="stop-deadline", daemon=True).start()


def run_worker(app: faust.App, *, loglevel: str = "info") -> None:
    """Run the worker in this process until it is stopped (SIGINT/SIGTERM), within
    :data:`STOP_TIMEOUT_S` of the signal."""
    from faust.worker import Worker

    class BoundedWorker(Worker):
        def _schedule_shutdown(self, signum: Any) -> None:
            if not self._signal_stop_time:
                _exit_unless_stopped(app, STOP_TIMEOUT_S)
            super()._schedule_shutdown(signum)

    if isinstance(app.output, transactions.TransactionalOutput):
        app.output.start()
    worker = BoundedWorker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
