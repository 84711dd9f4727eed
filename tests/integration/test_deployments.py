"""Two deployments in one home, as a user runs them: each with its own stream, sink and API,
one Prometheus for both.  Nothing but ``PARIVISION_DEPLOYMENT`` (and ports) tells them apart.

- Prometheus finds every process of both from the files they write (no config rewritten), and
  each series carries its deployment: the shots each scored, counted by Prometheus, equal what
  each one's replay sent and its own store holds.
- A promotion in one swaps the champion of that one only: the other's registry entry, its
  stream's model and its ``models.events`` topic do not move.
- A drift report made for one is served by its own API only.
- A process of one killed outright raises PariVisionProcessDown for that deployment only.
"""

from __future__ import annotations

import os
import shutil
import signal
import uuid

import httpx
import pytest
from pymongo import MongoClient

from infra.monitoring import start_prometheus, stop_prometheus
from infra.targets import list_targets
from models import registry
from parivision.cli.processes import start_process, stop_process, wait_for_group
from parivision.sources import open_source
from parivision.topics import ensure_topics
from producers.pacing import make_pacer
from producers.replay import replay
from tests.integration.conftest import (
    copy_champion,
    free_port,
    make_settings,
    model_events,
    monitored_ports,
    wait_for_progress,
    wait_until,
)
from tests.integration.retraining import cli

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not shutil.which("prometheus") and not os.environ.get("CI"),
        reason="Debian's prometheus is not installed (CI has it)",
    ),
]

# Different counts, so that a number that belonged to the other deployment would show.
SHOTS = {"a": 240, "b": 160}


def _deployment(services, home, name: str, prometheus_port: int):
    """Settings as a user of deployment ``name`` has them: the plain defaults, with only the
    deployment's name and free ports (the session's services are the shared Kafka, MongoDB and
    MLflow of the home)."""
    ports = monitored_ports()
    ports["prometheus_port"] = prometheus_port
    return make_settings(
        services,
        home=home,
        deployment=name,
        # Every name from the deployment: none given by hand.
        topic_prefix=None,
        mongodb_database=None,
        sink_group=None,
        model_name=None,
        app_id="parivision-stream",
        api_port=free_port(),
        replay_metrics_port=0,
        retrain_metrics_port=0,
        **{
            k: v
            for k, v in ports.items()
            if k not in ("replay_metrics_port", "retrain_metrics_port")
        },
    )


class Prometheus:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}/api/v1"

    def by_deployment(self, expr: str) -> dict[str, float]:
        body = httpx.get(f"{self.base}/query", params={"query": expr}, timeout=10).json()
        return {
            r["metric"].get("deployment", ""): float(r["value"][1]) for r in body["data"]["result"]
        }

    def alerts(self, name: str) -> list[dict]:
        body = httpx.get(f"{self.base}/alerts", timeout=10).json()
        return [a["labels"] for a in body["data"]["alerts"] if a["labels"]["alertname"] == name]


@pytest.fixture(scope="module")
def two(services, champion_version, games_csv, tmp_path_factory):
    endpoints, _ = services
    home = tmp_path_factory.mktemp("two-deployments")
    tag = uuid.uuid4().hex[:6]
    prometheus_port = free_port()
    deployments = {
        key: _deployment(services, home, f"{key}{tag}", prometheus_port) for key in SHOTS
    }
    processes = {}
    try:
        for settings in deployments.values():
            copy_champion(settings, champion_version, copies=2)
            ensure_topics(settings)
        start_prometheus(deployments["a"], scrape_interval_s=1.0)
        for key, settings in deployments.items():
            for command in ("stream", "sink", "serve"):
                processes[key, command] = start_process(
                    settings, endpoints, command, f"{command}.log"
                )
        for key, settings in deployments.items():
            mine = {c: p for (k, c), p in processes.items() if k == key}
            wait_for_group(settings, settings.stream_group(), mine)
            wait_for_group(settings, settings.sink_consumer_group(), mine)
            base = f"http://127.0.0.1:{settings.api_port}"
            wait_until(lambda base=base: _answers(f"{base}/health"), 120, "each API to answer")
        for key, settings in deployments.items():
            replay(
                settings,
                open_source(str(games_csv), limit=SHOTS[key]),
                pacer=make_pacer(rate=None),
                limit=SHOTS[key],
                show_progress=False,
            )
        for key, settings in deployments.items():
            db = MongoClient(settings.mongodb())[settings.database()]
            wait_for_progress(
                lambda db=db: db.predictions.count_documents({"outcome": {"$exists": True}}),
                SHOTS[key],
                f"{key}'s labelled predictions stored",
            )
        yield {
            "settings": deployments,
            "processes": processes,
            "prom": Prometheus(prometheus_port),
            "services": services,
        }
    finally:
        for process in processes.values():
            stop_process(process)
        stop_prometheus(deployments["a"])


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def test_every_name_of_one_deployment_differs_from_the_other_s(two):
    a, b = two["settings"].values()
    assert a.topic("shots.attempts") == f"{a.deployment}.shots.attempts"
    for name in ("registered_model", "database", "stream_group", "sink_consumer_group"):
        assert getattr(a, name)() != getattr(b, name)()
    for settings in (a, b):  # each process logged in its deployment's own folder
        logs = settings.deployment_dir("logs")
        assert {"stream.log", "sink.log", "serve.log"} <= {p.name for p in logs.iterdir()}


def test_prometheus_scrapes_both_from_the_targets_they_wrote_each_labelled(two):
    a, b = two["settings"].values()
    prom = two["prom"]
    written = {(job, t["labels"]["deployment"]) for job, t in list_targets(a)}
    assert written == {(job, s.deployment) for s in (a, b) for job in ("stream", "sink", "api")}

    def scraped() -> bool:
        up = prom.by_deployment('count by (deployment) (up{job=~"stream|sink|api"} == 1)')
        return up == {a.deployment: 3.0, b.deployment: 3.0}

    wait_until(scraped, 60, "Prometheus to scrape the three processes of each deployment")
    # What each deployment's stream scored, as Prometheus counts it, is what its replay sent
    # and what its own database stored: no deployment's count is the other's or the sum.
    expected = {s.deployment: float(SHOTS[k]) for k, s in two["settings"].items()}
    wait_until(
        lambda: (
            prom.by_deployment("sum by (deployment) (parivision_shots_scored_total)") == expected
        ),
        60,
        "Prometheus to read each stream's final count",
    )
    for key, settings in two["settings"].items():
        db = MongoClient(settings.mongodb())[settings.database()]
        assert db.predictions.count_documents({}) == SHOTS[key]


def test_a_promotion_in_one_leaves_the_other_s_champion_alone(two):
    a, b = two["settings"].values()
    services = two["services"]
    b_champion = registry.champion_version(b)
    a_champion = registry.champion_version(a)
    a_next = str(int(a_champion) + 1)  # copy_champion made two versions; the second waits

    cli(a, services, "promote", a_next, "--force")

    assert registry.champion_version(a) == a_next
    assert registry.champion_version(b) == b_champion  # b's registry entry did not move
    assert [e["event"] for e in model_events(a)][-1:] == ["promoted"]
    assert model_events(b) == []  # nothing was said on b's topic
    # Each API serves its own deployment's champion: a's the new one, b's the one it had.
    for settings, version in ((a, a_next), (b, b_champion)):

        def serves(settings=settings, version=version) -> bool:
            base = f"http://127.0.0.1:{settings.api_port}"
            model = httpx.get(f"{base}/health", timeout=10).json()["model"] or {}
            return (model.get("name"), model.get("version")) == (
                settings.registered_model(),
                version,
            )

        wait_until(serves, 60, f"{settings.deployment}'s API to serve v{version}")


def test_a_drift_report_is_served_by_its_own_deployment_s_api_only(two):
    a, b = two["settings"].values()
    cli(a, two["services"], "drift", "--window", "100")

    assert list(a.deployment_dir("reports").glob("drift-*.json"))
    assert not b.deployment_dir("reports").exists()
    mine = httpx.get(f"http://127.0.0.1:{a.api_port}/reports/drift.json", timeout=10)
    theirs = httpx.get(f"http://127.0.0.1:{b.api_port}/reports/drift.json", timeout=10)
    assert mine.status_code == 200, mine.text
    assert theirs.status_code == 404, theirs.text


def test_a_process_killed_in_one_deployment_alerts_for_that_one_only(two):
    a, b = two["settings"].values()
    prom = two["prom"]
    sink = two["processes"]["a", "sink"]
    sink.send_signal(signal.SIGKILL)  # no clean exit: its target stays, and is down
    sink.wait(timeout=30)

    def sink_alerts() -> list[dict]:
        return [x for x in prom.alerts("PariVisionProcessDown") if x.get("job") == "sink"]

    wait_until(lambda: bool(sink_alerts()), 60, "PariVisionProcessDown (pending) for a's sink")
    assert {labels["deployment"] for labels in sink_alerts()} == {a.deployment}
    assert not [x for x in prom.alerts("PariVisionProcessDown") if x["deployment"] == b.deployment]
