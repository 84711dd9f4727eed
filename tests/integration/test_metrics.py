"""A real Prometheus scrapes the running stream, sink, API, replay and retrain loop; what it reads
back must agree with MongoDB and the topics, and every dashboard query must return data.

One module-scoped run: real 2018-19 shots in game order, 60 malformed attempts among them, the
retrain loop with a count trigger the replay reaches.  Then each test reads Prometheus's HTTP
API.  Tolerances are stated where a number is an estimate (histogram quantiles, rates).
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import time
import uuid

import httpx
import numpy as np
import pytest
from pymongo import MongoClient

from parivision import metrics as catalogue
from parivision import schemas
from parivision.topics import end_offsets
from tests.integration.conftest import (
    copy_champion,
    make_settings,
    monitored_ports,
    wait_for_progress,
    wait_until,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("prometheus") is None and not __import__("os").environ.get("CI"),
        reason="Debian's prometheus package is not installed (CI installs it)",
    ),
]

SHOTS = 3000
# Malformed attempts sent straight to shots.attempts, by the reason code they must be counted as.
BAD = {"empty": [b""] * 10, "invalid_json": [b"{not json", b"[1, 2"] * 15}
BAD["schema"] = [json.dumps({"shot_id": "x"}).encode(), b'{"player_id": "nan"}'] * 10


@pytest.fixture(scope="module")
def run(services, champion_version, games_csv, tmp_path_factory):
    from infra.monitoring import start_prometheus, stop_prometheus
    from parivision.cli.processes import start_process, stop_process, wait_for_group
    from parivision.metrics import for_job
    from parivision.sources import open_source
    from parivision.topics import ensure_topics
    from producers.pacing import make_pacer
    from producers.replay import replay

    endpoints, _ = services
    settings = make_settings(
        services,
        home=tmp_path_factory.mktemp("metrics-home"),
        **monitored_ports(),
        # The whole replay in the live-quality window, so it can be checked against MongoDB.
        metrics_window=10 * SHOTS,
        retrain_min_new_labelled=SHOTS - 500,
        retrain_holdout=500,
        retrain_poll_s=2.0,
        retrain_every_s=0,
        # Only the count trigger retrains here; drift is still checked and exported, at every
        # poll that finds new shots or labels: the report the retrain follows then has the
        # labels (one made while the first outcomes were in had too few for the quality panel).
        retrain_drift_share=0,
        retrain_drift_every=0,
        # This test is about what the loop reports, not what it learns: it may retrain on the
        # store alone (asked for), on a window of a few games, with a model of the test's own.
        retrain_store_only=True,
        promotion_min_players=0,
        promotion_min_teams=0,
        promotion_min_games=0,
        model_name=f"metrics-{uuid.uuid4().hex[:6]}",
    )
    copy_champion(settings, champion_version)
    ensure_topics(settings)
    targets = {
        "stream": [f"127.0.0.1:{settings.stream_metrics_port}"],
        "sink": [f"127.0.0.1:{settings.sink_metrics_port}"],
        "api": [f"127.0.0.1:{settings.api_port}"],
        "replay": [f"127.0.0.1:{settings.replay_metrics_port}"],
        "retrainer": [f"127.0.0.1:{settings.retrain_metrics_port}"],
    }
    processes = {}
    try:
        for command, log in (
            ("stream", "stream.log"),
            ("sink", "sink.log"),
            ("serve", "api.log"),
            ("retrain-loop", "retrain.log"),
        ):
            processes[command] = start_process(settings, endpoints, command, log)
        start_prometheus(settings, targets, scrape_interval_s=1.0)
        wait_for_group(settings, settings.stream_group(), processes)
        wait_for_group(settings, settings.sink_consumer_group(), processes)
        base = f"http://127.0.0.1:{settings.api_port}"
        wait_until(lambda: _answers(f"{base}/health"), 120, "the API to answer")
        dlq_before = end_offsets(settings, settings.topic(schemas.DLQ))

        # The malformed attempts first, so they are counted while the replay runs.
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": settings.kafka()})
        for values in BAD.values():
            for value in values:
                producer.produce(settings.topic(schemas.ATTEMPTS), value=value, key=b"1")
        producer.flush(30)

        replay_metrics = for_job("replay")
        replay_metrics.serve(settings.metrics_host, settings.replay_metrics_port)
        started = time.time()
        replay(
            settings,
            open_source(str(games_csv), limit=SHOTS),
            pacer=make_pacer(rate=None),
            limit=SHOTS,
            show_progress=False,
            metrics=replay_metrics,
        )
        # A few API calls, so the request metrics have data.
        for path in ("/health", "/models", "/shots?limit=5", "/no-such-route"):
            httpx.get(f"{base}{path}", timeout=30)

        db = MongoClient(settings.mongodb())[settings.database()]
        wait_for_progress(
            lambda: db.predictions.count_documents({"outcome": {"$exists": True}}),
            SHOTS,
            "labelled predictions stored",
        )
        prom = Prometheus(f"http://127.0.0.1:{settings.prometheus_port}")
        # Prometheus scrapes every second: wait until it has read the final counts.
        wait_until(
            lambda: (
                prom.value("sum(parivision_shots_labelled_total)") == SHOTS
                and prom.value("sum(parivision_stored_total{collection='shots'})") == SHOTS
                or prom.value("sum(parivision_shots_labelled_total)")
            ),
            120,
            "Prometheus to read the final counters",
            interval=1.0,
        )
        # A replay is short-lived: keep its endpoint up until Prometheus has read its last count.
        wait_until(
            lambda: (
                prom.value("max_over_time(parivision_replay_produced_total{kind='attempt'}[10m])")
                == SHOTS
            ),
            60,
            "Prometheus to scrape the replay's final count",
            interval=1.0,
        )
        live_at = time.time()  # every process up, and Prometheus has read the replay's end
        replay_metrics.close()
        yield {
            "live_at": live_at,
            "settings": settings,
            "db": db,
            "prom": prom,
            "dlq": end_offsets(settings, settings.topic(schemas.DLQ)) - dlq_before,
            "started": started,
            "processes": processes,
            "base": base,
        }
    finally:
        for process in processes.values():
            stop_process(process)
        stop_prometheus(settings)


def _answers(url: str) -> bool | str:
    try:
        httpx.get(url, timeout=5)
        return True
    except httpx.HTTPError as error:
        return str(error)


def _alive(processes) -> str:
    dead = {name: p.returncode for name, p in processes.items() if p.poll() is not None}
    if dead:
        raise AssertionError(f"processes exited: {dead}")
    return "waiting"


class Prometheus:
    """Prometheus's HTTP API, as a dashboard or a person reads it."""

    def __init__(self, base: str) -> None:
        self.base = base

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        answer = httpx.get(f"{self.base}/api/v1/query", params=params, timeout=30)
        body = answer.json()
        assert body["status"] == "success", (expr, body)
        return body["data"]["result"]

    def value(self, expr: str, at: float | None = None) -> float:
        result = self.query(expr, at)
        return float(result[0]["value"][1]) if result else math.nan


def test_counts_match_mongodb_and_the_topics(run):
    prom, db = run["prom"], run["db"]
    stored = db.predictions.count_documents({})
    labelled = db.predictions.count_documents({"outcome": {"$exists": True}})
    assert stored == labelled == SHOTS
    # Counters are exact: no tolerance.
    assert prom.value("sum(parivision_shots_scored_total)") == SHOTS
    assert prom.value("sum(parivision_shots_labelled_total)") == labelled
    assert prom.value("sum(parivision_shots_consumed_total{kind='attempt'})") == SHOTS + sum(
        len(v) for v in BAD.values()
    )
    # The replay has ended, so its series are stale now: read its last value.
    produced = "sum(max_over_time(parivision_replay_produced_total{kind='attempt'}[10m]))"
    assert prom.value(produced) == SHOTS
    # One document a shot (parivision.store), written once with all its parts.
    whole = {"raw": {"$exists": True}, "features": {"$exists": True}, "outcome": {"$exists": True}}
    assert db.shots.count_documents(whole) == db.shots.count_documents({}) == labelled
    assert prom.value("sum(parivision_stored_total{collection='shots'})") == labelled
    # Dead letters: the DLQ topic grew by what the stream counted, by reason code.
    assert prom.value("sum(parivision_dead_letters_total)") == run["dlq"] == 60
    for reason, values in BAD.items():
        got = prom.value(f"sum(parivision_dead_letters_total{{reason='{reason}'}})")
        assert got == len(values), reason


def test_throughput_matches_the_stored_timestamps(run):
    prom, db = run["prom"], run["db"]
    times = sorted(d["scored_at"] for d in db.predictions.find({}, {"scored_at": 1}))
    window = max(5, math.ceil(time.time() - run["started"]) + 5)
    # increase() extrapolates from the samples to the window's end, by as much as the time
    # since the last scrape (6% on a busy machine once).  Asked at the last sample's own time,
    # over a window that starts before the replay (the counter at 0), it extrapolates nothing:
    # what the throughput panels are made of equals the count MongoDB holds.
    last = prom.value("timestamp(parivision_shots_scored_total)")
    increase = prom.value(f"sum(increase(parivision_shots_scored_total[{window}s]))", at=last)
    assert abs(increase - SHOTS) <= 0.01 * SHOTS, increase
    # The peak of the recorded rate cannot exceed what MongoDB saw scored in its best second
    # by more than the rate window's smoothing, nor be zero.
    peak = prom.value(f"max_over_time(parivision:shots_scored:rate1m[{window}s])")
    per_second = np.bincount((np.array(times) - times[0]).astype(int))
    assert 0 < peak <= per_second.max() * 1.05


def _bucket_of(value: float) -> int:
    return int(np.searchsorted(catalogue.LATENCY_BUCKETS, value, side="left"))


@pytest.mark.parametrize(
    ("metric", "field"),
    [
        ("parivision_score_latency_seconds", "scored_at"),
        ("parivision_end_to_end_latency_seconds", "stored_at"),
    ],
)
def test_latency_quantiles_fall_in_the_bucket_of_the_true_quantile(run, metric, field):
    prom, db = run["prom"], run["db"]
    docs = list(db.predictions.find({}, {"produced_at": 1, field: 1}))
    true = np.array([d[field] - d["produced_at"] for d in docs])
    window = max(5, math.ceil(time.time() - run["started"]) + 5)
    for q in (0.5, 0.99):
        estimate = prom.value(
            f"histogram_quantile({q}, sum by (le) (increase({metric}_bucket[{window}s])))"
        )
        exact = float(np.quantile(true, q))
        # The histogram knows only which bucket a value fell in: the estimate lies in the true
        # quantile's bucket (or, at a bucket edge, the next one).  The sink stores a shot a
        # flush after it reads it, so its end-to-end bucket may be one later than stored_at says.
        assert abs(_bucket_of(estimate) - _bucket_of(exact)) <= 1, (q, estimate, exact)


def test_live_log_loss_of_the_champion_matches_the_stored_outcomes(run):
    prom, db = run["prom"], run["db"]
    docs = list(
        db.predictions.find({"outcome": {"$exists": True}}, {"p_champion": 1, "outcome": 1})
    )
    y = np.array([d["outcome"] for d in docs], dtype=float)
    p = np.clip(np.array([d["p_champion"] for d in docs]), 1e-15, 1 - 1e-15)
    log_loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    brier = float(np.mean((p - y) ** 2))
    # The window holds every labelled shot of the run, so the gauges equal the stored numbers.
    wait_until(
        lambda: (
            prom.value("parivision_live_window_shots{model='champion'}") == SHOTS
            or prom.value("parivision_live_window_shots{model='champion'}")
        ),
        60,
        "the live window to hold every labelled shot",
        interval=1.0,
    )
    assert prom.value("parivision_live_log_loss{model='champion'}") == pytest.approx(
        log_loss, abs=1e-6
    )
    assert prom.value("parivision_live_brier{model='champion'}") == pytest.approx(brier, abs=1e-6)
    learners = {r["metric"]["model"] for r in prom.query("parivision_live_log_loss")}
    assert learners >= {"champion", "bias", "on_champion"}
    assert prom.value("parivision_champion_reference_log_loss") > 0
    assert prom.query("parivision_champion_info")[0]["metric"]["version"]


def test_every_process_exports_its_whole_catalogue(run):
    settings = run["settings"]
    ports = {
        "stream": settings.stream_metrics_port,
        "sink": settings.sink_metrics_port,
        "api": settings.api_port,
        "retrainer": settings.retrain_metrics_port,
    }
    for job, port in ports.items():
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
        for spec in catalogue.SPECS:
            if job in spec.jobs:
                name = spec.exported_names()[0].removesuffix("_bucket")
                assert f"# TYPE {name} " in text, (job, name)


def test_the_retrain_loop_reports_its_decision(run):
    prom, processes = run["prom"], run["processes"]
    # The replay's labels reach the count trigger: the loop trains a challenger and decides.
    wait_until(
        lambda: (
            (
                prom.value("sum(parivision_promotion_decisions_total)") >= 1
                and prom.value("sum(parivision_retrains_total{trigger='count'})") >= 1
            )
            or _alive(processes)
        ),
        600,
        "the retrain loop to retrain and decide a challenge",
        interval=2.0,
    )
    assert prom.value("sum(parivision_retrains_total{trigger='count'})") >= 1
    assert prom.value("sum(parivision_promotion_decisions_total)") >= 1
    assert prom.value("parivision_labelled_since_retrain") >= 0
    # Evidently's drift check ran on the stored shots and exported its summary.
    assert 0 <= prom.value("parivision_drift_share") <= 1


def test_every_dashboard_query_returns_data(run):
    from infra.grafana.dashboards import all_queries

    prom = run["prom"]

    def empty() -> list:
        found = []
        for dashboard, panel, expr in all_queries():
            result = prom.query(expr)  # fails on a query Prometheus cannot evaluate
            # Annotations mark events (a swap, a promotion): none in this run is no data, rightly.
            if result or panel.startswith("annotation:"):
                continue
            # A panel over the run: data then counts (the replay, gone since, was scraped then).
            if not prom.query(expr, at=run["live_at"]):
                found.append((dashboard, panel, expr))
        return found

    # A counter first exported a moment ago (the retrain loop's first decision) has one sample,
    # and increase() needs two; on a busy machine the loop's first drift report can be minutes
    # behind (it trains first): give Prometheus more scrapes before calling a panel empty.
    with contextlib.suppress(AssertionError):  # the assertion below names what is empty
        wait_until(lambda: not empty(), 240, "every dashboard query to return data", interval=2.0)
    missing = empty()
    assert not missing, f"{len(missing)} dashboard queries return nothing: {missing}"


def test_the_live_model_quality_view_renders_in_a_real_browser(run, tmp_path):
    """Prometheus's own graph page, in headless Chromium, shows the champion and every online
    learner's live log loss and ROC-AUC: the view an operator opens when the decay alert fires.
    ``PARIVISION_QUALITY_SCREENSHOT=docs/model-quality.png`` keeps the picture."""
    from urllib.parse import urlencode

    from tests.integration.test_page import REPO, chromium

    prom = run["prom"]
    query = urlencode(
        {
            # The champion and the learners (a version in shadow, if the loop's challenger got
            # that far, has a line of its own and is not what this view checks).
            "g0.expr": 'parivision_live_log_loss{model!="shadow"}',
            "g0.tab": "0",
            "g0.range_input": "2m",
            "g1.expr": 'parivision_live_roc_auc{model!="shadow"}',
            "g1.tab": "0",
            "g1.range_input": "2m",
        }
    )
    wanted = __import__("os").environ.get("PARIVISION_QUALITY_SCREENSHOT")
    screenshot = (REPO / wanted) if wanted else tmp_path / "model-quality.png"
    with chromium(tmp_path / "profile") as driver:
        driver.set_window_size(1400, 1400)
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1400, "height": 1400, "deviceScaleFactor": 1, "mobile": False},
        )
        driver.get(f"{prom.base}/graph?{query}")

        def legend_lists_every_model(d) -> bool:
            text = d.find_element("tag name", "body").text
            return all(f'model="{m}"' in text for m in ("champion", "bias", "on_champion")) and (
                text.count('model="champion"') >= 2
            )

        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(driver, 60, poll_frequency=0.5).until(
            legend_lists_every_model, "the graphs to list champion, bias and on_champion twice"
        )
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(screenshot))
        # Both graphs drew a line for each of the three models.
        assert driver.find_element("tag name", "body").text.count("Total time series: 3") == 2
    assert screenshot.stat().st_size > 20_000
