"""The retrain loop on the real pipeline: 3,000 real shots leave it quiet; 3,000 shifted ones
(taken 8 ft further out, made less often) make Evidently find the dataset drifted against the
champion's training sample, and a running ``parivision retrain-loop`` records ``data_drift`` as
its reason, registers and challenges a new version, and exports the drift on its /metrics."""

from __future__ import annotations

import json
import os
import uuid
from itertools import islice
from pathlib import Path

import httpx
import pandas as pd
import pytest
from pymongo import MongoClient
from typer.testing import CliRunner

from models import registry
from models.drift_report import LATEST_HTML, reports_folder, shifted_shots
from parivision.cli import app
from parivision.cli.processes import _child_env, start_process, stop_process
from parivision.sources.base import Source, SourceShot
from parivision.sources.csv_source import CsvSource
from producers.pacing import MaxPacer
from producers.replay import replay
from tests.integration.conftest import free_port, wait_until

pytestmark = pytest.mark.integration

REAL, LATER = (205_000, 208_000), (208_000, 211_000)  # file rows: 2019-03-06 to 03-11
LEAGUE = (20190201, 20190301)  # the champion's game dates, all before those
SHOTS = 3000
DRIFT_SHARE = 0.25
DISTANCES = {"x", "y", "distance_m", "coord_distance_ft", "zone_range"}
DECISIONS = "parivision_promotion_decisions_total"


class Shots(Source):
    def __init__(self, items, name):
        self.items, self.name = items, name

    def __iter__(self):
        return iter(self.items)


def shifted(items: list[SourceShot]) -> list[SourceShot]:
    """The same real shots taken 8 ft further out, four in ten of the made ones missed."""
    frame = pd.DataFrame([{**item.shot, "made": item.made} for item in items])
    moved = shifted_shots(frame, seed=3).to_dict("records")
    return [SourceShot({k: v for k, v in row.items() if k != "made"}, row["made"]) for row in moved]


def _cli(settings, services, *args):
    endpoints, _ = services
    result = CliRunner().invoke(app, list(args), env=_child_env(settings, endpoints))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def _metrics(port: int) -> dict[str, float]:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return {}
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def _firing(settings, name: str) -> bool | list:
    """True once Prometheus's rules have the alert firing; else the alerts it has."""
    url = f"http://127.0.0.1:{settings.prometheus_port}/api/v1/alerts"
    alerts = httpx.get(url, timeout=10).json()["data"]["alerts"]
    states = [(a["labels"]["alertname"], a["state"]) for a in alerts]
    return (name, "firing") in states or states


def test_shifted_shots_are_a_data_drift_the_retrain_loop_answers(
    services, settings_factory, pipeline, nba_csv, shots_frame, tmp_path
):
    from models.data import training_frames
    from models.lineage import lineage_of
    from models.train import train_and_register

    settings = settings_factory(
        home=tmp_path / "home",
        model_name=f"retrain-{uuid.uuid4().hex[:6]}",
        retrain_min_new_labelled=0,
        retrain_every_s=0,
        retrain_window=1500,
        retrain_holdout=1500,
        retrain_drift_share=DRIFT_SHARE,
        retrain_poll_s=1.0,
        retrain_metrics_port=free_port(),
    )
    # About 30,000 league shots, recorded as `parivision train --since --until` records them,
    # so a retrain learns them again beside the store's.
    league, name = training_frames([str(nba_csv)], since=LEAGUE[0], until=LEAGUE[1])
    champion = train_and_register(
        settings,
        league,
        data_name=name,
        candidates=["lightgbm"],
        make_champion=True,
        lineage=lineage_of([str(nba_csv)], since=LEAGUE[0], until=LEAGUE[1]),
    ).version
    items = list(islice(CsvSource(nba_csv), REAL[0], LATER[1]))
    real, moved = items[:SHOTS], shifted(items[SHOTS:])
    assert len(real) == len(moved) == SHOTS
    db = MongoClient(settings.mongodb())[settings.database()]
    reports = reports_folder(settings)

    def labelled() -> int:
        return db.predictions.count_documents({"outcome": {"$exists": True}})

    with pipeline(settings):
        replay(settings, Shots(real, "real"), pacer=MaxPacer(), show_progress=False)
        wait_until(lambda: labelled() == SHOTS, 120, "the real shots labelled")
        quiet = _cli(settings, services, "retrain-loop", "--once")
        assert quiet == {"retrained": False}
        assert db.retrain_events.count_documents({}) == 0
        calm = json.loads((reports / "latest.json").read_text())
        assert calm["reference"] == "champion" and calm["dataset_drift"] is False
        assert not DISTANCES & set(calm["drifted"])

        replay(settings, Shots(moved, "shifted"), pacer=MaxPacer(), show_progress=False)
        wait_until(lambda: labelled() == 2 * SHOTS, 120, "the shifted shots labelled")

        status = _cli(settings, services, "drift")
        data = status["data"]
        assert data["reference"] == "champion" and data["champion_version"] == champion
        assert data["reference_description"].startswith(f"champion v{champion}'s training sample")
        assert data["dataset_drift"] is True and data["drift_share"] >= DRIFT_SHARE
        assert set(data["drifted"]) >= DISTANCES
        assert data["recent_rows"] == 1500 and data["labelled_rows"] == 1500
        assert {"accuracy", "roc_auc", "log_loss"} <= set(data["quality"])
        assert Path(status["report"]).is_file() and (reports / LATEST_HTML).is_file()

    # The loop as it runs in production: a process polling the store, serving its metrics,
    # scraped by a real Prometheus that evaluates the committed alert rules.
    from infra.monitoring import start_prometheus, stop_prometheus

    endpoints, _ = services
    port = settings.retrain_metrics_port
    settings = settings.model_copy(
        update={"prometheus_port": free_port(), "alertmanager_port": free_port()}
    )
    start_prometheus(settings, {"retrainer": [f"127.0.0.1:{port}"]}, scrape_interval_s=1.0)
    loop = start_process(settings, endpoints, "retrain-loop", "retrain.log")
    try:

        def decided():
            assert loop.poll() is None, f"retrain-loop exited with {loop.returncode}"
            event = db.retrain_events.find_one({"finished_at": {"$exists": True}})
            seen = _metrics(port)
            decisions = sum(v for k, v in seen.items() if k.startswith(DECISIONS))
            return (event is not None and decisions >= 1) or f"{decisions} decision(s)"

        wait_until(decided, 600, "the running loop to retrain and decide", interval=1.0)
        # Its reports and retrains yield the CPU to the stream, the sink and the store.
        ours = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, loop.pid) == min(19, ours + settings.retrain_nice)
        seen = _metrics(port)
        wait_until(
            lambda: _firing(settings, "PariVisionDataDrift"),
            60,
            "Prometheus to fire PariVisionDataDrift",
            interval=1.0,
        )
    finally:
        stop_process(loop)
        stop_prometheus(settings)

    event = db.retrain_events.find_one({}, {"_id": 0})
    assert "data_drift" in event["reasons"] and "data_drift" in event["reason"].split(",")
    drift = event["drift"]["data"]
    assert drift["dataset_drift"] is True and drift["drift_share"] >= DRIFT_SHARE
    assert drift["reference"] == "champion" and Path(drift["report"]).is_file()
    counts = event["counts"]
    assert counts["new_labelled"] == 2 * SHOTS
    # Trained on what the champion learned and the store's labels, less the 1,500 most recent
    # (challenged on exactly those) and the champion's validation window (the reference set).
    sources = counts["sources"]
    assert sources[f"nba_shots.csv since {LEAGUE[0]} until {LEAGUE[1]}"] == len(league)
    assert sources[f"mongodb:{settings.database()}"] == 2 * SHOTS
    validation = int(registry.version_tags(settings, champion)["valid_rows"])
    assert sources["left_out"] == 1500 + validation
    assert counts["training_rows"] == len(league) + 2 * SHOTS - 1500 - validation
    version = event["training"]["version"]
    assert version != champion
    tags = registry.version_tags(settings, version)
    assert "data_drift" in tags["retrain.reason"].split(",")
    assert tags["retrain.drift_report"] == drift["report"]
    assert tags["challenge.decision"] == event["status"] in ("promoted", "refused", "shadowing")
    assert event["decision"]["challenger_version"] == version
    assert event["decision"]["window"]["shots"] == 1500
    assert event["finished_at"] >= event["at"]

    # What Prometheus scrapes from the retrainer: the drift is past its alert threshold.
    assert seen["parivision_drift_detected"] == 1.0
    assert seen["parivision_drift_share"] >= DRIFT_SHARE
    assert seen["parivision_drifted_features"] >= len(DISTANCES)
    assert seen['parivision_feature_drift_score{feature="distance_m"}'] > 0.1
    assert seen['parivision_retrains_total{trigger="data_drift"}'] == 1.0
    outcome = event["status"] if event["status"] in ("promoted", "shadowing") else "kept"
    assert seen[f'{DECISIONS}{{outcome="{outcome}"}}'] == 1.0
    assert seen["parivision_drift_checks_total"] >= 1.0
    assert 'parivision_recent_quality{metric="log_loss"}' in seen
