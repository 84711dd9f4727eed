"""Scaling out: two workers in one consumer group share the partitions of the shot topics."""

from __future__ import annotations

import time

import pytest

from parivision.cli.processes import start_process, stop_process
from parivision.sources.csv_source import CsvSource
from parivision.topics import ensure_topics
from producers.pacing import MaxPacer
from producers.replay import replay
from tests.integration.conftest import (
    KAFKA_ERRORS,
    ScoredReader,
    attempts_partitions_per_worker,
    wait_for_progress,
    wait_until,
)

pytestmark = pytest.mark.integration


def _one_command_two_workers(settings, endpoints):
    """``parivision stream --workers 2``: one process that starts the second worker itself."""
    import subprocess
    import sys

    from parivision.cli.processes import _child_env

    log = open(settings.deployment_dir("logs") / "scale-workers.log", "ab")  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, "-m", "parivision", "stream", "--workers", "2"],
        env=_child_env(settings, endpoints),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _members(settings) -> int | None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": settings.kafka()})
    name = settings.stream_group()
    return len(admin.describe_consumer_groups([name])[name].result(10).members)


@pytest.mark.parametrize("how", ["two processes", "--workers 2"])
def test_two_workers_split_the_partitions_and_score_every_shot_exactly_once(
    services, settings_factory, champion_version, games_csv, how
):
    endpoints, _ = services
    settings = settings_factory()
    ensure_topics(settings)
    (settings.deployment_dir("logs")).mkdir(parents=True, exist_ok=True)
    if how == "two processes":
        workers = [start_process(settings, endpoints, "stream", f"scale-{i}.log") for i in (1, 2)]
    else:
        workers = [_one_command_two_workers(settings, endpoints)]
    try:
        wait_until(
            lambda: attempts_partitions_per_worker(settings) == [2, 2],
            120,
            "two workers holding two partitions each",
            tolerate=KAFKA_ERRORS,
        )
        stats = replay(
            settings, CsvSource(games_csv), pacer=MaxPacer(), limit=4000, show_progress=False
        )

        shots = ScoredReader(settings)
        wait_until(lambda: shots.read() == stats.produced, 120, "every shot labelled")
        time.sleep(1.0)  # a duplicate, if there were one, would arrive right behind
        shots.read()
        shots.close()
        scored, labelled = shots.scored, shots.labelled
        assert attempts_partitions_per_worker(settings) == [2, 2]  # no rebalance happened meanwhile
    finally:
        for worker in workers:
            stop_process(worker, timeout=60)
    # Stopping the command stops the worker it started too: the group empties.
    wait_until(
        lambda: _members(settings) == 0, 90, "no worker left in the group", tolerate=KAFKA_ERRORS
    )
    assert len(scored) == stats.produced == 4000
    assert set(scored.values()) == {1} and set(labelled.values()) == {1}


def test_two_workers_started_on_a_backlog_lose_nothing_to_the_rebalance(
    services, settings_factory, champion_version, games_csv
):
    """A group of two started on shots already waiting (a restart of a scaled-out deployment):
    the first worker to join takes all four partitions and fetches from them, then the second
    joins and takes two before anything was committed. Faust committed past the first records
    of such a partition unread (the first 1,350 attempts of one, in a benchmark run) until
    streams.offsets made the first record of a partition with nothing committed the log's
    first. Every shot must be scored and labelled, once."""
    endpoints, _ = services
    settings = settings_factory()
    ensure_topics(settings)
    (settings.deployment_dir("logs")).mkdir(parents=True, exist_ok=True)
    shots = 20_000
    stats = replay(
        settings, CsvSource(games_csv), pacer=MaxPacer(), limit=shots, show_progress=False
    )
    workers = [start_process(settings, endpoints, "stream", f"backlog-{i}.log") for i in (1, 2)]
    try:
        counted = ScoredReader(settings)
        wait_for_progress(counted.read, stats.produced, "shots labelled by the group of two")
        time.sleep(1.0)
        counted.read()
        counted.close()
        scored, labelled = counted.scored, counted.labelled
    finally:
        for worker in workers:
            stop_process(worker)
    assert len(scored) == stats.produced == shots
    assert set(labelled.values()) == {1}
    # A shot scored twice is one a worker published, then lost with its partition before its
    # table write: the store keeps one. Allow a micro-batch of them, no more.
    assert sum(n - 1 for n in scored.values()) <= settings.batch_size
