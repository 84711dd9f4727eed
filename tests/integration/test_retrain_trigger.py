"""The retrain loop on the real pipeline: 3,000 real shots leave it quiet; 3,000 drifted ones
(real 3PT shots pushed further out, most of them missed) fire the drift triggers, and a retrain
registers a new version and records its challenge in ``retrain_events``."""

from __future__ import annotations

import json
import uuid
from itertools import islice

import numpy as np
import pytest
from pymongo import MongoClient
from typer.testing import CliRunner

from models import registry
from parivision.cli import app
from parivision.demo import _child_env
from producers.base import Source, SourceShot
from producers.csv_source import CsvSource
from producers.pacing import MaxPacer
from producers.replay import replay
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.integration

REAL, LATER = (205_000, 208_000), (208_000, 240_000)
SHOTS = 3000


class Shots(Source):
    def __init__(self, items, name):
        self.items, self.name = items, name

    def __iter__(self):
        return iter(self.items)


def drifted(items, n: int, seed: int = 3) -> list[SourceShot]:
    """Real 3PT shots moved 10% further from the hoop (still on the court, distance to match),
    nine in ten of them missed."""
    rng = np.random.default_rng(seed)
    out = []
    for item in items:
        shot = dict(item.shot)
        if not shot["shot_type"].startswith("3"):
            continue
        shot["x"] = int(np.clip(round(shot["x"] * 1.1), -250, 250))
        shot["y"] = int(np.clip(round(shot["y"] * 1.1), -52, 940))
        shot["shot_distance"] = min(100, int(np.hypot(shot["x"], shot["y"]) / 10))
        made = int(item.made and rng.random() < 0.1)
        out.append(SourceShot(shot, made))
        if len(out) == n:
            break
    return out


def _cli(settings, services, *args):
    endpoints, _ = services
    result = CliRunner().invoke(app, list(args), env=_child_env(settings, endpoints))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_drifted_shots_fire_the_drift_triggers_and_a_recorded_retrain(
    services, settings_factory, pipeline, nba_csv, shots_frame
):
    from models.train import train_and_register

    settings = settings_factory(
        model_name=f"retrain-{uuid.uuid4().hex[:6]}",
        retrain_min_new_labelled=0,
        retrain_every_s=0,
        retrain_window=1500,
        retrain_holdout=1500,
    )
    champion = train_and_register(
        settings,
        shots_frame.iloc[170_000:200_000],
        data_name="30,000 shots",
        candidates=["lightgbm"],
        make_champion=True,
    ).version
    items = list(islice(CsvSource(nba_csv), REAL[0], LATER[1]))
    real = items[: REAL[1] - REAL[0]]
    shifted = drifted(items[REAL[1] - REAL[0] :], SHOTS)
    assert len(real) == len(shifted) == SHOTS
    db = MongoClient(settings.mongodb())[settings.mongodb_database]

    def labelled() -> int:
        return db.predictions.count_documents({"outcome": {"$exists": True}})

    with pipeline(settings):
        replay(settings, Shots(real, "real"), pacer=MaxPacer(), show_progress=False)
        wait_until(lambda: labelled() == SHOTS, 120, "the real shots labelled")
        quiet = _cli(settings, services, "retrain-loop", "--once")
        assert quiet == {"retrained": False}
        assert db.retrain_events.count_documents({}) == 0

        replay(settings, Shots(shifted, "drifted"), pacer=MaxPacer(), show_progress=False)
        wait_until(lambda: labelled() == 2 * SHOTS, 120, "the drifted shots labelled")

        report = _cli(settings, services, "drift")
        assert report["data"]["share"] > 0.5
        assert {"distance_m", "shot_value", "made"} <= set(report["data"]["drifted"])
        assert report["adwin"]["detections"] >= 1

        event = _cli(settings, services, "retrain-loop", "--once")

    assert "data_drift" in event["reasons"] and "error_drift" in event["reasons"]
    assert event["drift"]["data"]["share"] > 0.5
    assert event["drift"]["adwin"]["detections"] >= 1
    assert event["counts"]["new_labelled"] == 2 * SHOTS
    # Trained on all but the 1,500 most recent labels, challenged on exactly those.
    assert event["counts"]["training_rows"] == 2 * SHOTS - 1500
    version = event["training"]["version"]
    assert version != champion
    assert registry.version_tags(settings, version)["challenge.decision"] == event["status"]
    assert event["status"] in ("promoted", "refused")
    assert event["decision"]["challenger_version"] == version
    assert event["decision"]["window"]["shots"] == 1500
    stored = db.retrain_events.find_one({}, {"_id": 0})
    assert stored["status"] == event["status"] and stored["reasons"] == event["reasons"]
    assert stored["training"]["version"] == version
    assert stored["finished_at"] >= stored["at"]
