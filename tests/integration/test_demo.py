"""`parivision demo --until-done`, run as a user runs it, against the session's services."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid

import httpx
import pytest

from parivision.cli.processes import _child_env
from tests.integration.conftest import copy_champion, monitored_ports

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _monitoring_stopped(services):
    """A demo starts Prometheus and Alertmanager (when installed) in the session's home and
    leaves them running, as `parivision up` would: stopped after each test here, or a later
    test's own Prometheus in that home would take over the pid file and leave this one running
    past the session."""
    from infra.monitoring import stop_alertmanager, stop_prometheus

    yield
    _, base = services
    stop_prometheus(base)
    stop_alertmanager(base)


def test_demo_until_done_reports_every_shot_produced_scored_and_stored(
    services, settings_factory, champion_version, nba_csv
):
    endpoints, _ = services
    # The whole loop, on ports of its own: every process serves metrics, Prometheus scrapes them
    # (when installed), and the retrain loop's count trigger is one this replay reaches.
    settings = settings_factory(
        **monitored_ports(),
        retrain_min_new_labelled=2000,
        retrain_holdout=1000,
        retrain_drift_share=0,
        # A model of its own: the retrain loop may challenge it, never the session's champion.
        model_name=f"demo-{uuid.uuid4().hex[:6]}",
    )
    (version,) = copy_champion(settings, champion_version)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "parivision",
            "demo",
            "--data",
            str(nba_csv),
            "--limit",
            "3000",
            "--until-done",
            "--timeout",
            "240",
        ],
        env=_child_env(settings, endpoints),
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["produced"] == summary["scored"] == summary["stored"] == 3000
    assert summary["dead_lettered"] == 0
    assert summary["model_version"] == version
    assert summary["shots_per_second"] > 0 and summary["seconds"] > 0
    # Produce -> scored and produce -> stored, from the timestamps the records carry: a shot is
    # stored after it is scored.
    scored, stored = summary["scoring_latency_ms"], summary["stored_latency_ms"]
    assert 0 < scored["p50"] <= scored["p99"] and 0 < stored["p50"] <= stored["p99"]
    assert stored["p50"] > scored["p50"]
    assert "replay csv:nba_shots.csv" in result.stderr  # the progress bar was shown
    # A newcomer is told where the live page is, and it was up while the shots went by.
    assert summary["page"] == f"http://127.0.0.1:{settings.api_port}/"
    assert f"live court page: {summary['page']}" in " ".join(result.stderr.split())
    assert summary["live_feed_messages"] >= 2 * 3000  # every shot scored, then labelled
    # The retrain loop ran beside them: the count trigger fired, and as the file's first 3,000
    # shots are all Kobe Bryant's, the challenge waits for a window that covers the league
    # rather than training a model of one player (issue 21).
    challenge = summary["challenges"][0]
    assert challenge["reason"] == "count", summary["challenges"]
    assert challenge["status"] == "waiting", challenge
    assert challenge["decision"].startswith(
        "the recent window does not cover the league: 1 player (at least 30), 1 team"
    )
    assert challenge["challenger"] is None and challenge["champion_after"] is None
    if shutil.which("prometheus"):
        prometheus = summary["monitoring"]["prometheus"]
        assert prometheus.endswith(f":{settings.prometheus_port}")
        # It scraped the demo's processes: the stream's count is there (as of its last scrape).
        answer = httpx.get(
            f"http://127.0.0.1:{settings.prometheus_port}/api/v1/query",
            params={"query": "max_over_time(parivision_shots_scored_total[1h])"},
            timeout=10,
        ).json()["data"]["result"]
        assert answer and float(answer[0]["value"][1]) > 0


def test_a_demo_without_a_champion_trains_a_lightgbm_one_on_its_data_and_scores_with_it(
    services, settings_factory, games_csv
):
    import pandas as pd

    from models import registry
    from models.lineage import LINEAGE_TAG, Lineage

    endpoints, _ = services
    settings = settings_factory(model_name=f"demo-first-{uuid.uuid4().hex[:6]}")
    client = registry.client(settings)
    assert not client.search_model_versions(f"name='{settings.registered_model()}'")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "parivision",
            "demo",
            "--data",
            str(games_csv),
            "--limit",
            "300",
            "--until-done",
            "--timeout",
            "240",
        ],
        env=_child_env(settings, endpoints),
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    said = "".join(result.stderr.split())  # as read, however the console wrapped it

    def printed(text: str) -> bool:
        return "".join(text.split()) in said

    assert printed(f"no champion yet: training one on {games_csv}")
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["produced"] == summary["scored"] == summary["stored"] == 300

    (trained,) = client.search_model_versions(f"name='{settings.registered_model()}'")
    version = str(trained.version)
    assert registry.champion_version(settings) == version == summary["model_version"]
    assert printed(f"champion: {settings.registered_model()} v{version} (validation log loss")
    tags = registry.version_tags(settings, version)
    assert tags["candidate"] == "lightgbm" and tags["data"] == games_csv.name
    # Trained on the whole file (not the replay's 300), read here with pandas.
    raw = pd.read_csv(games_csv, low_memory=False)
    assert int(tags["train_rows"]) + int(tags["valid_rows"]) == len(raw) == 40_000
    assert int(tags["train_from"]) == raw["Game Date"].min()
    assert int(tags["valid_to"]) == raw["Game Date"].max()
    # And it records the file, so the retrain loop can learn it again.
    lineage = Lineage.from_json(tags[LINEAGE_TAG])
    assert [s.location for s in lineage.sources] == [str(games_csv.resolve())]
