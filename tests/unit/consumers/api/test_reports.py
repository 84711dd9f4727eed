"""`/reports/drift`: the latest report the drift check saved (drawn when first asked for), or a
404 saying how to make one."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from consumers.api import reports
from models.drift_checks import save_check
from models.drift_report import (
    DriftSummary,
    FeatureScore,
    check_drift,
    reports_folder,
    save_report,
)
from models.features import FEATURE_NAMES, build_features
from models.reference import CHAMPION, Reference
from parivision.settings import Settings


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(home=tmp_path / "home")


@pytest.fixture
def client(settings) -> TestClient:
    app = FastAPI()
    app.include_router(reports.router(settings))
    return TestClient(app)


def _summary(at: float, share: float) -> DriftSummary:
    return DriftSummary(
        at=at,
        reference="champion",
        reference_description="champion v3's training sample (5,000 of 30,000 rows)",
        reference_rows=5000,
        recent_rows=2000,
        labelled_rows=1990,
        drift_share=share,
        drift_threshold=0.25,
        dataset_drift=share >= 0.25,
        drifted=["distance_m"],
        features={"distance_m": FeatureScore("Wasserstein distance (normed)", 0.7, 0.1, True)},
        quality={"log_loss": 0.71, "roc_auc": 0.6},
        champion_version="3",
    )


@pytest.mark.parametrize("path", ["/reports/drift", "/reports/drift.json"])
def test_before_any_check_the_answer_is_a_404_naming_parivision_drift(client, settings, path):
    answer = client.get(path)
    assert answer.status_code == 404
    detail = answer.json()["detail"]
    assert "`parivision drift`" in detail
    assert str(reports_folder(settings)) in detail


def test_the_latest_report_and_its_summary_are_served(client, settings):
    folder = reports_folder(settings)
    save_report(folder, _summary(1.7e9, 0.1), "<html>first</html>")
    path = save_report(folder, _summary(1.7e9 + 60, 0.33), "<html>second</html>")
    html = client.get("/reports/drift")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert html.text == "<html>second</html>"
    summary = client.get("/reports/drift.json").json()
    assert summary["report"] == str(path) and summary["dataset_drift"] is True
    assert summary["drift_share"] == 0.33 and summary["at_utc"] == "2023-11-14T22:14:20+00:00"
    assert summary["features"]["distance_m"]["score"] == 0.7
    assert summary["quality"] == {"log_loss": 0.71, "roc_auc": 0.6}


def test_a_check_saved_undrawn_is_drawn_when_asked_for(client, settings, shots_frame):
    features = pd.DataFrame(
        build_features(shots_frame.iloc[205_000:207_000]), columns=list(FEATURE_NAMES)
    )
    reference = Reference(features.iloc[:1200], CHAMPION, "the first 1,200 real shots")
    summary, inputs = check_drift(features.iloc[1200:], reference, at=1.7e9)
    save_check(reports_folder(settings), summary, inputs)
    assert not Path(summary.report).exists()  # the retrain loop draws no report
    html = client.get("/reports/drift")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    # Evidently's report, headed by the check's summary.
    assert "Data drift: recent shots against the first 1,200 real shots" in html.text
    assert "Dataset Drift is NOT detected" in html.text
    assert Path(summary.report).read_text() == html.text
    assert client.get("/reports/drift").text == html.text
    assert client.get("/reports/drift.json").json()["report"] == summary.report


def test_the_live_api_serves_the_reports(settings):
    from consumers.api.app import create_app

    app = create_app(settings, follow_feed=False)
    paths = set(app.openapi()["paths"])
    assert paths >= {"/reports/drift", "/reports/drift.json"}
