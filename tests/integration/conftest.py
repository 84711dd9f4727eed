"""Real services, started once per test session; every test gets its own topics, group and database.

Where the ``PARIVISION_KAFKA_BOOTSTRAP`` / ``_MONGODB_URI`` / ``_MLFLOW_TRACKING_URI`` settings
are set (the compose stack, say), those are used and nothing is started for them.
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections import Counter

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition

from parivision import schemas
from parivision.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def services(tmp_path_factory):
    from infra.services import down, up

    home = tmp_path_factory.mktemp("parivision-home")
    settings = Settings(
        home=home,
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        mongodb_port=free_port(),
    )
    endpoints = up(settings)
    yield endpoints, settings
    down(settings)
    left = stop_left_running(home)
    if left:
        print(f"\nstopped after the session, still running from its home: {left}")


def stop_left_running(home) -> list[str]:
    """Stop every process whose command line names ``home`` (a service a test started and lost
    track of); what was stopped, as ``pid: command``."""
    import os
    from pathlib import Path

    from infra.process import terminate

    stopped = []
    for entry in Path("/proc").glob("[0-9]*"):
        pid = int(entry.name)
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(home) in cmdline and pid != os.getpid():
            terminate(pid, 10.0)
            stopped.append(f"{pid}: {cmdline[:120]}")
    return stopped


def make_settings(services, **overrides) -> Settings:
    """Settings for one test (or one module): the session's services, fresh topics, groups,
    database and API port."""
    endpoints, base = services
    tag = uuid.uuid4().hex[:8]
    values = {
        "home": base.home,
        "kafka_bootstrap": endpoints.kafka,
        "mongodb_uri": endpoints.mongodb,
        "mlflow_tracking_uri": endpoints.mlflow,
        "topic_prefix": f"t{tag}.",
        "mongodb_database": f"t{tag}",
        "app_id": f"pv-{tag}",
        "sink_group": f"sink-{tag}",
        # Outcomes 0.5 s of wall time after their attempts, whatever comes in between: the
        # fault and ordering tests need attempts held behind outcomes still on their way.
        "outcome_delay_s": 0.5,
        "outcome_timing": "wall",
        "model_name": SESSION_MODEL,
        "api_port": free_port(),
        # Metrics endpoints off: tests start several workers with one settings object; the
        # monitoring tests give each process its own port.
        "stream_metrics_port": 0,
        "sink_metrics_port": 0,
        "replay_metrics_port": 0,
        "retrain_metrics_port": 0,
    }
    values.update(overrides)
    return Settings(**values)


def monitored_ports() -> dict[str, int]:
    """Settings that turn every process's metrics on, and a Prometheus and Alertmanager, each
    on a free port of its own."""
    names = ("stream_metrics", "sink_metrics", "replay_metrics", "retrain_metrics")
    names += ("prometheus", "alertmanager")
    return {f"{name}_port": free_port() for name in names}


@pytest.fixture
def settings_factory(services):
    """Settings for one test: the session's services, fresh topics, groups and database."""
    return lambda **overrides: make_settings(services, **overrides)


@pytest.fixture(scope="session")
def champion_version(services, nba_csv):
    """A champion trained once on real shots, in the session's MLflow store."""
    endpoints, base = services
    from models.data import load_shots
    from models.registry import champion_version
    from models.train import train_and_register

    settings = Settings(
        home=base.home,
        kafka_bootstrap=endpoints.kafka,
        mongodb_uri=endpoints.mongodb,
        mlflow_tracking_uri=endpoints.mlflow,
        model_name=SESSION_MODEL,
    )
    existing = champion_version(settings)
    if existing:
        return existing
    frame = load_shots(nba_csv)
    return train_and_register(
        settings,
        frame.iloc[:SESSION_TRAINING_ROWS],
        data_name="nba_shots.csv",
        candidates=["lightgbm"],
    ).version


SESSION_MODEL = "parivision-shot-test"
# The session champion learns the file's first this-many shots (time order); later ones are unseen.
SESSION_TRAINING_ROWS = 150_000


@pytest.fixture(autouse=True)
def _session_champion_untouched(request):
    """After each test that had the session's champion: it is still the champion.  Tests
    compare predictions with its version; a test that promoted, shadowed or rolled back on the
    session's model would make every later result depend on test order."""
    yield
    if "champion_version" not in request.fixturenames:
        return
    from models.registry import champion_version

    version = request.getfixturevalue("champion_version")
    endpoints, base = request.getfixturevalue("services")
    settings = Settings(
        home=base.home, mlflow_tracking_uri=endpoints.mlflow, model_name=SESSION_MODEL
    )
    now = champion_version(settings)
    assert now == version, (
        f"this test moved the session's champion from v{version} to v{now}: give it a model "
        "of its own (copy_champion)"
    )


def copy_champion(settings: Settings, version: str, copies: int = 1) -> list[str]:
    """The session's champion copied ``copies`` times as versions of the test's model,
    the first made champion: a model of the test's own, so that what the test promotes,
    shadows or rolls back moves nobody else's champion.  A copy shares the source's run (its
    feature set, validation window) and tags, and costs no training."""
    from models import registry

    client = registry.client(settings)
    made = [
        str(
            client.copy_model_version(
                f"models:/{SESSION_MODEL}/{version}", settings.registered_model()
            ).version
        )
        for _ in range(copies)
    ]
    registry.set_champion(settings, made[0])
    return made


def model_events(settings: Settings) -> list[dict]:
    """Every decision on the test's ``models.events`` topic, oldest first."""
    topic = settings.topic(schemas.MODEL_EVENTS)
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka(), "group.id": f"events-{uuid.uuid4().hex[:6]}"}
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    events = [json.loads(m.value()) for m in consumer.consume(100, timeout=5) if not m.error()]
    consumer.close()
    return events


# What a wait on the broker's view of a group may see while the group forms or a broker moves.
KAFKA_ERRORS = (KafkaException,)


def wait_until(
    predicate, timeout: float, what: str, interval: float = 0.25, *, tolerate: tuple = ()
):
    """Wait until ``predicate()`` is True.  An exception of a ``tolerate`` type (the broker is
    restarting, say) counts as "not yet"; a timeout then says the last one seen, and chains it,
    so a failure shows its cause, not only that time ran out."""
    import time

    deadline = time.monotonic() + timeout
    last, error = None, None
    while time.monotonic() < deadline:
        try:
            last, error = predicate(), None
        except tolerate as raised:
            last, error = None, raised
        if last is True:
            return
        time.sleep(interval)
    if error is not None:
        raise AssertionError(
            f"timed out after {timeout:.0f}s waiting for {what} (last error: "
            f"{type(error).__name__}: {error})"
        ) from error
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last})")


def wait_for_progress(count, target: int, what: str, *, stall_s: float = 120.0):
    """Wait until ``count()`` reaches ``target``; fail only once it has not moved for
    ``stall_s`` seconds.  A busy machine makes the pipeline slow, not stuck: this waits for as
    long as work gets done, and no longer than ``stall_s`` once it stops."""
    import time

    last, moved = count(), time.monotonic()
    while last < target:
        if time.monotonic() - moved > stall_s:
            raise AssertionError(f"{what}: stuck at {last:,} of {target:,} for {stall_s:.0f}s")
        time.sleep(0.5)
        now = count()
        if now != last:
            last, moved = now, time.monotonic()
    assert last == target, f"{what}: {last:,}, more than {target:,}"


@pytest.fixture
def pipeline(services, champion_version):
    """Start the stream worker and the sink as real processes for a test's settings."""
    from contextlib import contextmanager

    from parivision.cli.processes import start_process, stop_process, wait_for_group
    from parivision.topics import ensure_topics

    endpoints, _ = services
    started = []

    @contextmanager
    def run(settings: Settings, *, stream: bool = True, sink: bool = True):
        ensure_topics(settings)
        processes = {}
        if stream:
            processes["stream"] = start_process(settings, endpoints, "stream", "demo-stream.log")
        if sink:
            processes["sink"] = start_process(settings, endpoints, "sink", "demo-sink.log")
        started.extend(processes.values())
        if stream:
            wait_for_group(settings, settings.stream_group(), processes)
        if sink:
            wait_for_group(settings, settings.sink_consumer_group(), processes)
        try:
            yield processes
        finally:
            for process in processes.values():
                stop_process(process)

    yield run
    for process in started:
        stop_process(process)


def attempts_partitions_per_worker(settings: Settings) -> list[int]:
    """Partitions of shots.attempts held by each member of the stream's group, once it is stable."""
    from confluent_kafka.admin import AdminClient

    from parivision import schemas

    admin = AdminClient({"bootstrap.servers": settings.kafka()})
    name = settings.stream_group()
    group = admin.describe_consumer_groups([name])[name].result(10)  # raises: a wait tolerates
    if not str(group.state).endswith("STABLE"):
        return []
    attempts = settings.topic(schemas.ATTEMPTS)
    return sorted(
        sum(1 for tp in member.assignment.topic_partitions if tp.topic == attempts)
        for member in group.members
    )


@pytest.fixture
def api(services, champion_version):
    """Start ``parivision serve`` as a real process for a test's settings; yields its base URL
    once it answers ``/health`` and follows ``shots.scored``."""
    from contextlib import contextmanager

    import httpx

    from parivision.cli.processes import start_process, stop_process
    from parivision.topics import ensure_topics

    endpoints, _ = services
    started = []

    @contextmanager
    def run(settings: Settings):
        ensure_topics(settings)
        settings = settings.model_copy(update={"api_port": free_port()})
        process = start_process(settings, endpoints, "serve", "demo-api.log")
        started.append(process)
        base = f"http://127.0.0.1:{settings.api_port}"

        def ready():
            if process.poll() is not None:
                raise AssertionError(f"parivision serve exited with {process.returncode}")
            try:
                health = httpx.get(f"{base}/health", timeout=5).json()
            except (httpx.HTTPError, ValueError):
                return "not answering yet"
            return health["live"]["following"] and health["model"] is not None or health

        wait_until(ready, 120, "the API to answer and follow shots.scored", interval=0.5)
        try:
            yield base
        finally:
            stop_process(process)

    yield run
    for process in started:
        stop_process(process)


class BackgroundReplay(threading.Thread):
    """A replay at a fixed rate in a thread, as a producer beside the test would run it.

    ``stats`` holds the replay's :class:`producers.replay.ReplayStats` once it is done, ``error``
    what it raised instead; :meth:`result` joins and returns the stats or fails the test.
    """

    def __init__(self, settings: Settings, source, *, rate: float | None, limit=None, **kwargs):
        super().__init__(name="replay", daemon=True)
        self.settings, self.source, self.rate, self.limit = settings, source, rate, limit
        self.kwargs = kwargs
        self.stats = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        from producers.pacing import MaxPacer, make_pacer
        from producers.replay import replay

        try:
            self.stats = replay(
                self.settings,
                self.source,
                pacer=make_pacer(rate=self.rate) if self.rate else MaxPacer(),
                limit=self.limit,
                show_progress=False,
                **self.kwargs,
            )
        except Exception as error:  # reported by result()
            self.error = error

    def result(self, timeout: float = 180.0):
        self.join(timeout)
        assert not self.is_alive(), f"the replay did not finish within {timeout:.0f}s"
        assert self.error is None, f"the replay failed: {self.error!r}"
        return self.stats


def scored_consumer(settings: Settings) -> Consumer:
    """A consumer of every partition of ``shots.scored`` from the start, reading what the sink
    and the API read: transactions' records once committed."""
    topic = settings.topic(schemas.SCORED)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka(),
            "group.id": uuid.uuid4().hex,
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in parts])
    return consumer


class ScoredReader:
    """Every record on ``shots.scored`` from the start, by shot id: how often it was scored and
    labelled, its probabilities and its features."""

    def __init__(self, settings) -> None:
        self.consumer = scored_consumer(settings)
        self.scored: Counter = Counter()
        self.labelled: Counter = Counter()
        self.p_scored: dict[str, float] = {}
        self.p_labelled: dict[str, float] = {}
        # Every distinct probability a shot was scored with (one, unless it was scored again
        # differently).
        self.p_scored_all: dict[str, set[float]] = {}
        self.features: dict[str, dict[str, float]] = {}

    def read(self) -> int:
        """Read what has arrived; return how many shots are labelled."""
        for message in self.consumer.consume(5000, timeout=0.5):
            if message.error():
                continue
            record = json.loads(message.value())
            shot_id = record["shot_id"]
            if record["labelled"]:
                self.labelled[shot_id] += 1
                self.p_labelled[shot_id] = record["p_champion"]
            else:
                self.scored[shot_id] += 1
                self.p_scored[shot_id] = record["p_champion"]
                self.p_scored_all.setdefault(shot_id, set()).add(record["p_champion"])
                self.features[shot_id] = record["features"]
        return len(self.labelled)

    def close(self) -> None:
        self.consumer.close()
