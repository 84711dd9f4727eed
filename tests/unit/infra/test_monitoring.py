"""`parivision up` without a usable Prometheus or Alertmanager: it says why and carries on.

Nothing here starts a process; tests/integration/test_monitoring_launch.py runs the real ones.
"""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from infra import services
from infra.monitoring import prometheus_config
from infra.services import Endpoints, status
from infra.targets import targets_dir
from parivision.metrics import JOBS
from parivision.settings import Settings


@pytest.fixture
def local_settings(tmp_path):
    def make(**overrides) -> Settings:
        values = {
            "home": tmp_path / "home",
            "kafka_bootstrap": None,
            "mongodb_uri": None,
            "mlflow_tracking_uri": None,
            "alerts_webhook_url": None,
        }
        return Settings(_env_file=None, **{**values, **overrides})

    return make


@pytest.fixture
def no_binaries(tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def up_monitoring(settings: Settings) -> tuple[Endpoints, str]:
    out = io.StringIO()
    endpoints = Endpoints(kafka="", mongodb="", mlflow="")
    services._up_monitoring(settings, Console(file=out, width=300), endpoints)
    return endpoints, out.getvalue()


def test_missing_packages_are_named_and_up_carries_on(local_settings, no_binaries):
    settings = local_settings()

    endpoints, said = up_monitoring(settings)

    assert endpoints.started == [] and endpoints.monitoring == {}
    assert "`sudo apt-get install prometheus`" in endpoints.skipped["prometheus"]
    assert "`sudo apt-get install prometheus-alertmanager`" in endpoints.skipped["alertmanager"]
    assert said.count("not installed") == 2 and "carrying on" in said
    assert not (settings.resolved_home() / "run").exists()  # no pid file, nothing started


def test_status_shows_monitoring_only_when_asked(local_settings, no_binaries):
    settings = local_settings(alertmanager_port=0)

    assert [s.name for s in status(settings)] == ["kafka", "mongodb", "mlflow"]
    found = {s.name: s for s in status(settings, monitoring=True)}

    assert found["prometheus"].state == "not installed"
    assert "apt-get install prometheus" in found["prometheus"].detail
    assert found["alertmanager"].state == "off"
    assert found["prometheus"].address == f"http://127.0.0.1:{settings.prometheus_port}"


def test_a_port_of_zero_turns_it_off(local_settings):
    settings = local_settings(prometheus_port=0, alertmanager_port=0)

    endpoints, _ = up_monitoring(settings)

    assert endpoints.skipped == {
        "prometheus": "off (PARIVISION_PROMETHEUS_PORT=0)",
        "alertmanager": "off (PARIVISION_ALERTMANAGER_PORT=0)",
    }


def test_prometheus_finds_each_job_s_targets_in_the_files_the_processes_write(local_settings):
    settings = local_settings()
    config = prometheus_config(settings)

    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert sorted(jobs) == sorted(JOBS)
    for name, job in jobs.items():
        (found,) = job["file_sd_configs"]
        assert found["files"] == [str(targets_dir(settings) / name / "*.json")]
        assert "static_configs" not in job
    assert jobs["api"]["metrics_path"] == "/metrics"


def test_targets_given_by_hand_carry_the_deployment(local_settings):
    settings = local_settings(deployment="west")
    config = prometheus_config(settings, {"stream": ["127.0.0.1:40123"]})

    (job,) = config["scrape_configs"]
    assert job["static_configs"] == [
        {"targets": ["127.0.0.1:40123"], "labels": {"deployment": "west"}}
    ]
