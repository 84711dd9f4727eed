"""The real local Prometheus, Alertmanager and `parivision alerts-webhook`, as `parivision up`
starts them, on free ports under a temporary home: rules load, and alerts travel all the way to
``alerts.jsonl``, from Alertmanager's API and from a metric crossing its threshold.

Needs no Kafka or MongoDB: the retrain loop is played by its real metric registry, served on its
port, whose drift gauges the test sets.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid

import httpx
import pytest
import yaml

from infra.monitoring import (
    ALERTMANAGER,
    PROMETHEUS,
    start_alertmanager,
    start_prometheus,
)
from infra.process import ServiceError
from infra.promql import recording_rules
from infra.services import down, status
from parivision.metrics import for_job
from parivision.settings import Settings
from tests.integration.conftest import free_port, wait_until
from tests.unit.infra.test_prometheus import ALERTS

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (shutil.which("prometheus") and shutil.which("prometheus-alertmanager"))
        and not os.environ.get("CI"),
        reason="Debian's prometheus and prometheus-alertmanager are not installed (CI has them)",
    ),
]


class Stack:
    def __init__(self, settings: Settings, retrainer, webhook: subprocess.Popen) -> None:
        self.settings = settings
        self.retrainer = retrainer
        self.webhook = webhook
        self.prometheus = f"http://127.0.0.1:{settings.prometheus_port}"
        self.alertmanager = f"http://127.0.0.1:{settings.alertmanager_port}"
        self.alerts_file = settings.resolved_home() / "alerts.jsonl"

    def received(self, alertname: str, status: str = "firing") -> list[dict]:
        """What the webhook receiver wrote for ``alertname`` so far."""
        if self.webhook.poll() is not None:
            raise AssertionError(f"parivision alerts-webhook exited with {self.webhook.returncode}")
        try:
            lines = self.alerts_file.read_text().splitlines()
        except FileNotFoundError:
            return []
        records = [json.loads(line) for line in lines]
        return [r for r in records if r["alertname"] == alertname and r["status"] == status]

    def prometheus_alerts(self) -> dict[str, str]:
        """Alert name -> state (pending or firing) as Prometheus evaluates them now."""
        found = httpx.get(f"{self.prometheus}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
        return {a["labels"]["alertname"]: a["state"] for a in found}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    home = tmp_path_factory.mktemp("monitoring-home")
    settings = Settings(
        _env_file=None,
        home=home,
        prometheus_port=free_port(),
        alertmanager_port=free_port(),
        alerts_webhook_port=free_port(),
        alerts_webhook_url=None,
        retrain_metrics_port=free_port(),
    )
    retrainer = for_job("retrainer")
    retrainer["drift_detected"].set(0)
    retrainer["drift_share"].set(0.1)
    webhook = None
    try:
        retrainer.serve("127.0.0.1", settings.retrain_metrics_port)
        env = {
            **os.environ,
            "PARIVISION_HOME": str(home),
            "PARIVISION_ALERTS_WEBHOOK_PORT": str(settings.alerts_webhook_port),
        }
        with open(home / "alerts-webhook.log", "ab") as log:
            webhook = subprocess.Popen(
                [sys.executable, "-m", "parivision", "alerts-webhook"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        stack = Stack(settings, retrainer, webhook)

        def webhook_ready():
            if webhook.poll() is not None:
                raise AssertionError(f"alerts-webhook exited: {(home / 'alerts-webhook.log')}")
            try:
                url = f"http://127.0.0.1:{settings.alerts_webhook_port}/health"
                return httpx.get(url, timeout=2).json()["ok"]
            except httpx.HTTPError as error:
                return str(error)

        wait_until(webhook_ready, 60, "the alerts webhook to answer")
        start_alertmanager(settings, group_wait_s=1)
        # The retrainer as it is, and a stream that nothing serves: its `up` is 0.
        targets = {
            "retrainer": [f"127.0.0.1:{settings.retrain_metrics_port}"],
            "stream": [f"127.0.0.1:{free_port()}"],
        }
        start_prometheus(settings, targets, scrape_interval_s=1)
        yield stack
    finally:
        stopped = down(settings)
        if webhook is not None:
            webhook.terminate()
            webhook.wait(timeout=30)
        retrainer.close()
    assert sorted(stopped) == ["alertmanager", "prometheus"]


def test_status_shows_both_running_from_their_pid_files(stack):
    found = {s.name: s for s in status(stack.settings, monitoring=True)}
    for name, monitor in (("prometheus", PROMETHEUS), ("alertmanager", ALERTMANAGER)):
        assert found[name].state == "running", found[name]
        assert found[name].pid == monitor.local_process(stack.settings).read_pid()


def test_prometheus_loads_every_rule_and_evaluates_them_without_error(stack):
    def rules() -> list[dict]:
        groups = httpx.get(f"{stack.prometheus}/api/v1/rules", timeout=10).json()["data"]
        return [rule for group in groups["groups"] for rule in group["rules"]]

    def all_evaluated():
        found = rules()
        bad = [(r["name"], r["health"], r.get("lastError")) for r in found if r["health"] != "ok"]
        return bool(found) and not bad or bad or "no rules yet"

    # A rule is "unknown" until its first evaluation, "err" if it fails to evaluate.
    wait_until(all_evaluated, 30, "every rule to evaluate")
    found = rules()
    assert {r["name"] for r in found if r["type"] == "alerting"} == ALERTS
    assert {r["name"] for r in found if r["type"] == "recording"} == recording_rules()
    assert all(r["health"] == "ok" for r in found), found


def test_an_alert_posted_to_alertmanager_reaches_the_webhook(stack):
    name = f"PariVisionTest{uuid.uuid4().hex[:8]}"
    alert = {
        "labels": {"alertname": name, "severity": "critical", "job": "stream"},
        "annotations": {"summary": "a synthetic alert", "description": "posted by a test"},
    }

    response = httpx.post(f"{stack.alertmanager}/api/v2/alerts", json=[alert], timeout=10)

    assert response.status_code == 200, response.text
    wait_until(lambda: bool(stack.received(name)) or "nothing yet", 60, f"{name} in alerts.jsonl")
    (record,) = stack.received(name)
    assert (record["severity"], record["summary"]) == ("critical", "a synthetic alert")
    assert record["receiver"] == "parivision-webhook"


def test_drift_fires_in_prometheus_within_seconds_and_reaches_the_webhook(stack):
    assert "PariVisionDataDrift" not in stack.prometheus_alerts()

    stack.retrainer["drift_share"].set(0.6)
    crossed = time.monotonic()

    wait_until(
        lambda: (
            stack.prometheus_alerts().get("PariVisionDataDrift") == "firing"
            or stack.prometheus_alerts()
        ),
        30,
        "PariVisionDataDrift to fire in Prometheus",
    )
    fired_after = time.monotonic() - crossed
    wait_until(
        lambda: bool(stack.received("PariVisionDataDrift")) or "nothing yet",
        60,
        "PariVisionDataDrift in alerts.jsonl",
    )
    (record,) = stack.received("PariVisionDataDrift")
    assert record["severity"] == "warning"
    # The deployment is the label Prometheus put on the scraped retrainer (infra/monitoring.py).
    deployment = stack.settings.deployment_name()
    assert record["summary"] == f"Data drift in {deployment}: 60% of the features drifted"
    assert fired_after < 30


def test_a_down_process_is_pending_before_it_fires(stack):
    # `for: 1m`: the unserved stream target shows pending first, never firing at once.
    wait_until(
        lambda: (
            stack.prometheus_alerts().get("PariVisionProcessDown") == "pending"
            or stack.prometheus_alerts()
        ),
        30,
        "PariVisionProcessDown to be pending for the unserved stream",
    )


def test_a_config_prometheus_refuses_fails_with_its_log(tmp_path):
    settings = Settings(_env_file=None, home=tmp_path / "home", prometheus_port=free_port())

    with pytest.raises(ServiceError) as error:
        start_prometheus(settings, {}, scrape_interval_s=1, evaluation_interval_s=-1)

    message = str(error.value)
    assert message.startswith(f"Prometheus at http://127.0.0.1:{settings.prometheus_port}")
    assert "the process exited" in message and "prometheus.log" in message
    assert PROMETHEUS.local_process(settings).read_pid() is None
    config = yaml.safe_load(PROMETHEUS.config_file(settings).read_text())
    assert config["global"]["evaluation_interval"] == "-1s"


def test_a_second_start_in_a_home_replaces_the_first_so_down_stops_it(tmp_path):
    from infra.process import pid_alive

    first = Settings(_env_file=None, home=tmp_path / "home", prometheus_port=free_port())
    second = first.model_copy(update={"prometheus_port": free_port()})
    one = start_prometheus(first, {}, scrape_interval_s=1)
    try:
        two = start_prometheus(second, {}, scrape_interval_s=1)
        # The first was stopped before the second started on its other port.
        assert not pid_alive(one) and pid_alive(two)
        assert PROMETHEUS.local_process(second).read_pid() == two
    finally:
        down(first)
    assert not pid_alive(one) and not pid_alive(two)
