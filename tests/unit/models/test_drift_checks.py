"""A drift check is kept undrawn (its summary and frames), and Evidently's full report of it is
drawn from them the first time it is asked for, then kept; the last few checks are kept, with
one file per reference they were computed against."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from models import drift_checks
from models.drift_checks import draw_report, latest_report, save_check, summary_from_dict
from models.drift_report import LATEST_HTML, LATEST_JSON, check_drift, latest_summary, shifted_shots
from models.features import FEATURE_NAMES, build_features
from models.reference import CHAMPION, Reference, reference_sample

REFERENCE, RECENT = (205_000, 207_000), (207_000, 209_000)


@pytest.fixture(scope="module")
def checked(shots_frame):
    """A check of real shots taken 8 ft further out, 1,990 of them labelled, against 2,000
    real shots before them."""
    before = shots_frame.iloc[slice(*REFERENCE)]
    reference = Reference(
        reference_sample(build_features(before), before["made"].to_numpy()),
        CHAMPION,
        "champion v1's training sample",
        version="1",
    )
    shots = shifted_shots(shots_frame.iloc[slice(*RECENT)])
    recent = pd.DataFrame(build_features(shots), columns=list(FEATURE_NAMES))
    recent["outcome"] = shots["made"].to_numpy(dtype=np.float64)
    recent["p_champion"] = 0.45
    recent.loc[recent.index[-10:], "outcome"] = np.nan
    return reference, recent


def _save(checked, folder, at, keep=20, reference=None):
    summary, inputs = check_drift(checked[1], reference or checked[0], champion_version="1", at=at)
    save_check(folder, summary, inputs, keep=keep)
    return summary


def test_a_check_keeps_its_summary_and_frames_and_draws_nothing(checked, tmp_path):
    summary = _save(checked, tmp_path, 1.7e9)
    assert summary.dataset_drift is True and summary.labelled_rows == 1990
    report = tmp_path / "drift-20231114T221320.000Z.html"
    assert summary.report == str(report) and not report.exists()
    assert not (tmp_path / LATEST_HTML).exists()
    assert latest_summary(tmp_path) == json.loads(json.dumps(summary.as_dict()))
    saved = json.loads((tmp_path / "drift-20231114T221320.000Z.json").read_text())
    assert saved["summary"] == latest_summary(tmp_path) and saved["min_labelled"] == 100
    recent = pd.read_parquet(tmp_path / "drift-20231114T221320.000Z.recent.parquet")
    pd.testing.assert_frame_equal(recent, checked[1], check_dtype=False)
    reference = pd.read_parquet(tmp_path / saved["reference"])
    assert list(reference.columns) == list(FEATURE_NAMES) and len(reference) == 2000
    # The summary a report is drawn under is the check's (to the six digits JSON keeps).
    again = summary_from_dict(saved["summary"])
    distance, kept = summary.features["distance_m"], again.features["distance_m"]
    assert (kept.method, kept.drifted) == (distance.method, distance.drifted)
    assert kept.score == pytest.approx(distance.score, rel=1e-5)
    assert again.as_dict() == saved["summary"]


def test_the_report_is_evidently_s_drawn_on_request_then_kept(checked, tmp_path, monkeypatch):
    assert latest_report(tmp_path) is None  # no check yet
    summary = _save(checked, tmp_path, 1.7e9)
    path = latest_report(tmp_path)
    assert path is not None and str(path) == summary.report
    html = path.read_text()
    assert "Dataset Drift is detected" in html  # Evidently's own drift preset
    assert "champion v1&#x27;s training sample" in html or "champion v1's training sample" in html
    assert "Champion quality on the 1,990 recent labelled shots" in html
    assert (tmp_path / LATEST_HTML).read_text() == html

    # Asked again, the report is read, not drawn again.
    def refuse(*args, **kwargs):
        raise AssertionError("drawn twice")

    monkeypatch.setattr("models.drift_evidently.render_html", refuse)
    assert latest_report(tmp_path) == path and draw_report(path) == path

    # A new check replaces the latest report, which is drawn when asked for.
    _save(checked, tmp_path, 1.7e9 + 60)
    assert not (tmp_path / LATEST_HTML).exists()
    with pytest.raises(AssertionError, match="drawn twice"):
        latest_report(tmp_path)


def test_only_the_last_checks_and_their_references_are_kept(checked, tmp_path, monkeypatch):
    monkeypatch.setattr(drift_checks, "REFERENCE_GRACE_S", -1.0)
    reports = [_save(checked, tmp_path, 1.7e9 + i, keep=3).report for i in range(4)]
    names = sorted(p.name for p in tmp_path.glob("drift-*.json"))
    assert [n.removesuffix(".json") for n in names] == [
        os.path.basename(r).removesuffix(".html") for r in reports[1:]
    ]
    assert len(list(tmp_path.glob("drift-*.recent.parquet"))) == 3
    assert len(list(tmp_path.glob("reference-*.parquet"))) == 1  # one reference, one file
    with pytest.raises(FileNotFoundError):
        draw_report(tmp_path / os.path.basename(reports[0]))

    # A new champion's reference: the old one goes once no kept check was computed against it.
    other = Reference(checked[0].frame.iloc[:1500], CHAMPION, "champion v2's training sample")
    for i in range(4, 7):
        _save(checked, tmp_path, 1.7e9 + i, keep=3, reference=other)
    kept = list(tmp_path.glob("reference-*.parquet"))
    assert len(kept) == 1 and len(pd.read_parquet(kept[0])) == 1500
    assert not list(tmp_path.glob(".*partial")) and (tmp_path / LATEST_JSON).is_file()
