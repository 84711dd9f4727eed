"""`parivision demo --until-done`, run as a user runs it, against the session's services."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from parivision.demo import _child_env

pytestmark = pytest.mark.integration


def test_demo_until_done_reports_every_shot_produced_scored_and_stored(
    services, settings_factory, champion_version, nba_csv
):
    endpoints, _ = services
    settings = settings_factory()
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
    assert summary["model_version"] == champion_version
    assert summary["shots_per_second"] > 0 and summary["seconds"] > 0
    assert "replay csv:nba_shots.csv" in result.stderr  # the progress bar was shown
    # A newcomer is told where the live page is, and it was up while the shots went by.
    assert summary["page"] == f"http://127.0.0.1:{settings.api_port}/"
    assert f"live court page: {summary['page']}" in " ".join(result.stderr.split())
    assert summary["live_feed_messages"] >= 2 * 3000  # every shot scored, then labelled
