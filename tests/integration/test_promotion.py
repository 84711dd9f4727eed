"""Champion and challenger on the real pipeline: a worse challenger is refused, a better one is
swapped into two running stream workers mid-replay without losing or double-scoring a shot, and
a rollback puts the old champion back."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter, defaultdict
from itertools import islice

import lightgbm as lgb
import numpy as np
import pytest
from confluent_kafka import Consumer, TopicPartition
from pymongo import MongoClient
from typer.testing import CliRunner

from models import registry
from models.features import CATEGORICAL, FEATURE_NAMES, FEATURE_SET, build_features
from models.promotion import PromotionError, challenge, rollback
from parivision import schemas
from parivision.cli import app
from parivision.cli.processes import _child_env, start_process, stop_process
from parivision.sources.base import Source
from parivision.sources.csv_source import CsvSource
from producers.pacing import MaxPacer, RatePacer
from producers.replay import replay
from tests.integration.conftest import (
    KAFKA_ERRORS,
    attempts_partitions_per_worker,
    model_events,
    wait_until,
)

pytestmark = pytest.mark.integration

# Positions in the time-sorted file (CsvSource and load_shots agree on the order): the models
# learn from shots up to 200,000 and are measured and replayed on later ones.
FAIR_ROWS, BETTER_ROWS = slice(195_000, 200_000), slice(100_000, 200_000)


class HeldPacer:
    """A pacer that stops at given shot counts until a condition holds (at most 5 minutes each).

    The swap must fall while shots flow, however slow the machine: the replay waits for the
    promotion before its middle, and for every worker's swap before its last shots.
    """

    def __init__(self, pacer, holds: dict[int, object]) -> None:
        self.pacer, self.holds = pacer, holds
        self.sent = 0

    def wait(self, shot) -> None:
        ready = self.holds.get(self.sent)
        if ready is not None:
            deadline = time.monotonic() + 300
            while not ready() and time.monotonic() < deadline:
                time.sleep(0.05)
        self.sent += 1
        self.pacer.wait(shot)


PHASE_A, PHASE_B, PHASE_C = (205_000, 208_000), (208_000, 212_000), (212_000, 212_600)


class Shots(Source):
    def __init__(self, items, name):
        self.items, self.name = items, name

    def __iter__(self):
        return iter(self.items)


class ScoredLog(threading.Thread):
    """Every record on shots.scored, from the beginning, by replay id."""

    def __init__(self, settings):
        super().__init__(daemon=True)
        self.topic = settings.topic(schemas.SCORED)
        self.records = defaultdict(list)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.consumer = Consumer(
            {"bootstrap.servers": settings.kafka(), "group.id": f"scored-{uuid.uuid4().hex[:6]}"}
        )
        partitions = self.consumer.list_topics(self.topic, timeout=10).topics[self.topic]
        self.consumer.assign([TopicPartition(self.topic, p, 0) for p in partitions.partitions])

    def run(self):
        while not self.stop.is_set():
            for message in self.consumer.consume(1000, timeout=0.2):
                if message.error():
                    continue
                record = json.loads(message.value())
                # Same key, partitioner and count as shots.attempts: the partition a worker holds.
                record["partition"] = message.partition()
                with self.lock:
                    self.records[record["replay_id"]].append(record)
        self.consumer.close()

    def of(self, replay_id):
        with self.lock:
            return list(self.records[replay_id])


def _register_worse(settings, frame) -> str:
    """3 trees on 2,000 old shots: a model that should never win."""
    import mlflow

    from infra.mlflow_store import configure_mlflow
    from models.shot_model import ShotModel, log_shot_model

    rows = frame.iloc[:2000]
    x = build_features(rows)
    data = lgb.Dataset(
        x,
        rows["made"].to_numpy(),
        feature_name=list(FEATURE_NAMES),
        categorical_feature=list(CATEGORICAL),
    )
    booster = lgb.train({"objective": "binary", "verbosity": -1, "num_threads": 1}, data, 3)
    configure_mlflow(settings)
    with mlflow.start_run(run_name="worse-on-purpose"):
        mlflow.set_tags({"feature_set": FEATURE_SET})
        info = log_shot_model(
            ShotModel("lightgbm", booster), x, registered_model_name=settings.registered_model()
        )
    return str(info.registered_model_version)


def _exactly_once(records, expected_ids):
    """Every shot once unscored->scored and once labelled, nothing else; returns the scored ones."""
    scored = [r for r in records if not r["labelled"]]
    labelled = [r for r in records if r["labelled"]]
    assert Counter(r["shot_id"] for r in scored) == Counter(expected_ids)
    assert Counter(r["shot_id"] for r in labelled) == Counter(expected_ids)
    version_of = {r["shot_id"]: r["model_version"] for r in scored}
    assert all(version_of[r["shot_id"]] == r["model_version"] for r in labelled)
    return scored


def _recomputed(settings, db, version: str) -> dict[str, float]:
    """Log loss, ROC-AUC and expected calibration error (10 equal-count bins) of ``version`` on
    every labelled shot in ``db``, from the stored features and outcomes, by scikit-learn."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import log_loss, roc_auc_score

    docs = list(db.shots.find({"outcome": {"$exists": True}}, {"features": 1, "outcome": 1}))
    x = np.array([[d["features"].get(n, np.nan) for n in FEATURE_NAMES] for d in docs])
    y = np.array([int(d["outcome"]) for d in docs])
    p = np.asarray(registry.load_version(settings, version).predict(x), dtype=np.float64)
    # Ten equal-count bins (what the README says the calibration error uses): scikit-learn's
    # quantile calibration curve, each bin weighted by its shots (by sklearn's binning rule).
    made, predicted = calibration_curve(y, p, n_bins=10, strategy="quantile")
    edges = np.percentile(p, np.linspace(0, 100, 11))
    counts = np.bincount(np.searchsorted(edges[1:-1], p), minlength=10)
    ece = (counts[counts > 0] * np.abs(made - predicted)).sum() / len(y)
    return {"log_loss": log_loss(y, p), "roc_auc": roc_auc_score(y, p), "ece": float(ece)}


def _cli(settings, services, *args):
    """Run a ``parivision`` command with this test's settings in its environment."""
    endpoints, _ = services
    return CliRunner().invoke(app, list(args), env=_child_env(settings, endpoints))


def _swapped_in_logs(settings, logs, old, new):
    """Whether every worker logged the swap (the pipeline's worker and ours share no log)."""
    needle = f"champion of {settings.registered_model()} swapped from v{old} to v{new}"
    return all(log.exists() and needle in log.read_text(errors="replace") for log in logs)


def test_a_worse_challenger_is_refused_a_better_one_swapped_in_live_then_rolled_back(
    services, settings_factory, pipeline, nba_csv, shots_frame
):
    from models.train import train_and_register

    # The margin comes from the settings (the command reads PARIVISION_PROMOTION_MARGIN).
    settings = settings_factory(
        model_name=f"promotion-{uuid.uuid4().hex[:6]}", promotion_margin=0.003
    )
    fair = train_and_register(
        settings,
        shots_frame.iloc[FAIR_ROWS],
        data_name="5,000 shots",
        candidates=["lightgbm"],
        make_champion=True,
    ).version
    worse = _register_worse(settings, shots_frame)
    better = train_and_register(
        settings,
        shots_frame.iloc[BETTER_ROWS],
        data_name="100,000 shots",
        candidates=["lightgbm"],
        make_champion=False,
    ).version
    assert registry.champion_version(settings) == fair

    items = list(islice(CsvSource(nba_csv), PHASE_A[0], PHASE_C[1]))
    start = PHASE_A[0]
    phase = {
        name: items[lo - start : hi - start]
        for name, (lo, hi) in (("a", PHASE_A), ("b", PHASE_B), ("c", PHASE_C))
    }
    db = MongoClient(settings.mongodb())[settings.database()]

    def labelled_in_store(replay_id):
        return db.predictions.count_documents(
            {"replay_id": replay_id, "outcome": {"$exists": True}}
        )

    endpoints, _ = services
    logs = settings.deployment_dir("logs")
    second_log = f"promotion-{settings.prefix().strip('.')}.log"
    worker_logs = [logs / "demo-stream.log", logs / second_log]
    with pipeline(settings):
        # A second worker in the group: every worker must swap, not only one of them.
        second = start_process(settings, endpoints, "stream", second_log)
        scored = ScoredLog(settings)
        scored.start()
        try:
            wait_until(
                lambda: attempts_partitions_per_worker(settings) == [2, 2],
                120,
                "two workers holding two partitions each",
                tolerate=KAFKA_ERRORS,
            )
            # Phase A: labelled shots in MongoDB for the challenges to be measured on.
            a = replay(settings, Shots(phase["a"], "a"), pacer=MaxPacer(), show_progress=False)
            wait_until(lambda: labelled_in_store(a.replay_id) == 3000, 120, "phase A labelled")

            # Through the command line: a refusal is an answer (exit 0), the last line is JSON.
            result = _cli(settings, services, "promote", f"v{worse}", "--window", "5000")
            assert result.exit_code == 0, result.output
            assert "REFUSED" in result.stdout
            refused = json.loads(result.stdout.strip().splitlines()[-1])
            assert refused["event"] == "refused" and refused["challenger_version"] == worse
            assert refused["window"]["shots"] == 3000 and refused["window"]["requested"] == 5000
            assert refused["margin"] == 0.003 and refused["window"]["form_source"] == "stream"
            champion, challenger = refused["metrics"]["champion"], refused["metrics"]["challenger"]
            assert challenger["log_loss"] > champion["log_loss"] - 0.003
            assert registry.champion_version(settings) == fair
            assert registry.version_tags(settings, worse)["challenge.decision"] == "refused"
            # The numbers the decision rests on, recomputed here: the store's labelled shots
            # read from MongoDB, through each version from the registry, scored by sklearn.
            for role, version in (("champion", fair), ("challenger", worse)):
                truth = _recomputed(settings, db, version)
                print(f"\n{role} v{version}: event {refused['metrics'][role]}, sklearn {truth}")
                for name, value in truth.items():
                    assert refused["metrics"][role][name] == pytest.approx(value, abs=1e-6), name

            # Phase B: promote the better one while shots are flowing at 300/s.  Shots 2,000 on
            # wait for the promotion, and the last 500 for both workers' swaps, however slow the
            # challenge and the model loads are on a busy machine: the swap falls mid-replay.
            promoted_event = threading.Event()
            b_pacer = HeldPacer(
                RatePacer(300),
                {
                    2000: promoted_event.is_set,
                    3500: lambda: _swapped_in_logs(settings, worker_logs, fair, better),
                },
            )
            b_stats = {}
            b_thread = threading.Thread(
                target=lambda: b_stats.update(
                    stats=replay(
                        settings,
                        Shots(phase["b"], "b"),
                        pacer=b_pacer,
                        show_progress=False,
                        replay_id="phase-b",
                    )
                )
            )
            b_thread.start()
            wait_until(
                lambda: sum(not r["labelled"] for r in scored.of("phase-b")) >= 500,
                60,
                "phase B under way",
            )
            # At once (no shadow first): this test is about the swap in running workers.
            try:
                promoted = challenge(settings, better, now=True)
            finally:
                promoted_event.set()
            assert promoted.promoted, promoted.reason
            assert registry.champion_version(settings) == better
            b_thread.join(60)
            assert b_stats["stats"].produced == 4000
            wait_until(
                lambda: len(scored.of("phase-b")) >= 8000, 120, "phase B scored and labelled"
            )
            wait_until(lambda: labelled_in_store("phase-b") == 4000, 120, "phase B stored")

            b_scored = _exactly_once(scored.of("phase-b"), [i.shot["shot_id"] for i in phase["b"]])
            by_version = Counter(r["model_version"] for r in b_scored)
            assert set(by_version) == {fair, better}, by_version  # the swap fell mid-replay
            # One cut in time per partition (its worker swaps once): every shot scored before it
            # by the old champion, every one after by the new.
            for partition in {r["partition"] for r in b_scored}:
                mine = [r for r in b_scored if r["partition"] == partition]
                old = [r["scored_at"] for r in mine if r["model_version"] == fair]
                new = [r["scored_at"] for r in mine if r["model_version"] == better]
                assert not old or not new or max(old) < min(new), partition
            stored = Counter(
                d["model_version"] for d in db.predictions.find({"replay_id": "phase-b"})
            )
            assert stored == by_version
            assert _swapped_in_logs(settings, worker_logs, fair, better)

            # Rollback: the old champion is back, in the registry and in the stream.
            result = _cli(settings, services, "rollback")
            assert result.exit_code == 0, result.output
            back = json.loads(result.stdout.strip().splitlines()[-1])
            assert (back["event"], back["version"], back["previous_version"]) == (
                "rolled_back",
                fair,
                better,
            )
            assert registry.champion_version(settings) == fair
            wait_until(
                lambda: _swapped_in_logs(settings, worker_logs, better, fair), 60, "the swap back"
            )
            c = replay(settings, Shots(phase["c"], "c"), pacer=MaxPacer(), show_progress=False)
            wait_until(lambda: len(scored.of(c.replay_id)) >= 1200, 60, "phase C scored")
            time.sleep(1.0)  # a duplicate, if there were one, would arrive right behind
            c_scored = _exactly_once(
                scored.of(c.replay_id), [i.shot["shot_id"] for i in phase["c"]]
            )
            assert {r["model_version"] for r in c_scored} == {fair}
        finally:
            scored.stop.set()
            stop_process(second)

    assert [e["event"] for e in model_events(settings)] == ["refused", "promoted", "rolled_back"]
    with pytest.raises(PromotionError, match="no previous champion"):
        rollback(settings)  # one level deep: the rollback used it up
    events = model_events(settings)
    assert (events[0]["version"], events[0]["challenger_version"]) == (fair, worse)
    assert (events[1]["version"], events[1]["previous_version"]) == (better, fair)
    assert (events[2]["version"], events[2]["previous_version"]) == (fair, better)
    m = events[1]["metrics"]
    assert m["challenger"]["log_loss"] <= m["champion"]["log_loss"] - 0.002
    assert m["challenger"]["roc_auc"] >= m["champion"]["roc_auc"]
    assert registry.version_tags(settings, better)["replaced_by"] == fair
    assert "replaced_by" not in registry.version_tags(settings, fair)
    assert db.predictions.count_documents({}) == 7600
