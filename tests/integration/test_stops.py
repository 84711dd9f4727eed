"""Stopping a command that starts children leaves nothing of its tree running.

``parivision demo`` started as a shell starts a background job (SIGINT ignored), then stopped
with SIGTERM, or with SIGINT: its summary is printed, and it and every process it started
(``serve``, ``stream``, ``sink``, ``retrain-loop``) are gone within a bounded wait.  Killed
with SIGKILL, it can clean up nothing itself: its children end anyway.  The same for the extra
workers of ``stream --workers 2``.  Monitoring is off here: Prometheus and Alertmanager are
services (``parivision up`` / ``down``), not children.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from infra.process import pid_alive
from parivision.cli.children import leftovers
from parivision.cli.processes import _child_env
from tests.integration.conftest import KAFKA_ERRORS, attempts_partitions_per_worker, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GONE_WITHIN_S = 60.0  # the worker's own stop deadline is 30 s


def descendants(pid: int) -> set[int]:
    """Every running process below ``pid``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what a shell does to a background job


def _start_demo(settings, endpoints, nba_csv, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "parivision", "demo", "--data", str(nba_csv), "--limit", "300"],
            env=_child_env(settings, endpoints),
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_ignore_sigint,
            start_new_session=True,
        )


def _drained_demo(services, settings_factory, nba_csv, tmp_path):
    """A background demo whose pipeline has drained, its summary printed: (settings, the demo,
    its log, every process below it)."""
    endpoints, _ = services
    settings = settings_factory(prometheus_port=0, alertmanager_port=0, retrain_drift_share=0)
    log = tmp_path / "demo.log"
    demo = _start_demo(settings, endpoints, nba_csv, log)
    try:
        wait_until(
            lambda: "pipeline drained" in log.read_text() or demo.poll() is not None,
            300,
            "the demo drained",
        )
        assert demo.poll() is None, log.read_text()[-3000:]
        # The summary is printed while the pipeline still runs, not only once it is stopped.
        assert "PariVision demo" in log.read_text()
        tree = descendants(demo.pid)
        assert len(tree) >= 4, tree  # serve, stream, sink, retrain-loop
    except BaseException:
        demo.kill()
        demo.wait(10)
        raise
    return settings, demo, log, tree


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_background_demo_stops_on_a_signal_with_its_summary_and_leaves_nothing(
    services, settings_factory, champion_version, nba_csv, tmp_path, signum
):
    _, demo, log, tree = _drained_demo(services, settings_factory, nba_csv, tmp_path)
    try:
        demo.send_signal(signum)
        demo.wait(GONE_WITHIN_S)
    finally:
        if demo.poll() is None:
            demo.kill()
    left = [pid for pid in tree if pid_alive(pid)]
    assert not left, f"still running after the demo stopped: {left}"
    assert demo.returncode == 0, log.read_text()[-3000:]
    summary = json.loads(log.read_text().strip().splitlines()[-1])
    assert summary["produced"] == summary["scored"] == summary["stored"] == 300


def test_a_demo_killed_outright_takes_its_children_with_it(
    services, settings_factory, champion_version, nba_csv, tmp_path
):
    settings, demo, _, tree = _drained_demo(services, settings_factory, nba_csv, tmp_path)
    demo.kill()  # SIGKILL: no finally, no handler runs in the demo
    demo.wait(10)
    wait_until(
        lambda: not any(pid_alive(pid) for pid in tree),
        GONE_WITHIN_S,
        "the killed demo's children to end",
    )
    assert not [pid for pid in leftovers(settings.resolved_home()) if pid in tree]


def test_the_extra_workers_of_stream_workers_2_end_with_their_parent(
    services, settings_factory, champion_version
):
    endpoints, _ = services
    settings = settings_factory()
    parent = subprocess.Popen(
        [sys.executable, "-m", "parivision", "stream", "--workers", "2"],
        env=_child_env(settings, endpoints),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(
            lambda: attempts_partitions_per_worker(settings) == [2, 2],
            120,
            "two workers holding two partitions each",
            tolerate=KAFKA_ERRORS,
        )
        extra = descendants(parent.pid)
        assert extra, "no extra worker"
    finally:
        parent.kill()
        parent.wait(10)
    wait_until(
        lambda: not any(pid_alive(pid) for pid in extra),
        GONE_WITHIN_S,
        "the extra worker to end with its parent",
    )


def test_down_stops_the_pipeline_processes_of_its_home_and_only_those(
    services, settings_factory, tmp_path
):
    """A sink left running in one home (as a crashed demo leaves it) and one in another; `down`
    for the first stops the first, leaves the second, and the shared services stay up."""
    from infra.kafka import probe as kafka_probe
    from infra.mongodb import probe as mongodb_probe
    from parivision.cli.processes import start_process, stop_process, wait_for_group
    from parivision.topics import ensure_topics

    endpoints, _ = services
    mine = settings_factory(home=tmp_path / "mine")
    other = settings_factory(home=tmp_path / "other")
    sinks = {}
    try:
        for name, settings in (("mine", mine), ("other", other)):
            ensure_topics(settings)
            sinks[name] = start_process(settings, endpoints, "sink", f"{name}-sink.log")
            wait_for_group(settings, settings.sink_consumer_group(), {name: sinks[name]})
        assert leftovers(mine.resolved_home()) == [sinks["mine"].pid]

        down = subprocess.run(
            [sys.executable, "-m", "parivision", "down"],
            env=_child_env(mine, endpoints),
            capture_output=True,
            text=True,
            timeout=GONE_WITHIN_S,
        )
        assert down.returncode == 0, down.stderr
        last = down.stdout.strip().splitlines()[-1]
        # The session's Kafka and MongoDB were started under another home: not this one's.
        assert last == f"stopped: pipeline process {sinks['mine'].pid}"
        wait_until(
            lambda: sinks["mine"].poll() is not None, GONE_WITHIN_S, "this home's sink to stop"
        )
        assert sinks["mine"].returncode == 0  # stopped by SIGTERM, cleanly
        assert sinks["other"].poll() is None and pid_alive(sinks["other"].pid)
        assert kafka_probe(endpoints.kafka) is None
        assert mongodb_probe(endpoints.mongodb) is None
    finally:
        for process in sinks.values():
            stop_process(process)
