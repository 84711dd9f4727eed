"""The retrain loop's own promotion, end to end: asked to retrain (``parivision retrain-loop
--request``), the running loop trains a clearly better challenger, shadows it live, promotes it,
and the running stream serves it; nothing forces any step.

The champion is underfit: one split on the league's November 2018, recorded with that month's
lineage.  The loop's challenger learns what that champion learned plus the stored December shots.
The truth the promotion is checked against is computed here: the log loss of both on the shots
the shadow was judged on, from what MongoDB stored, and on league shots neither model ever saw
(February and March 2019).
"""

from __future__ import annotations

import json
import uuid
from itertools import islice

import numpy as np
import pytest
from pymongo import MongoClient
from sklearn.metrics import roc_auc_score

from models import registry
from parivision.cli.processes import start_process, stop_process
from parivision.sources.csv_source import CsvSource
from producers.pacing import MaxPacer
from producers.replay import replay
from tests.integration.conftest import (
    BackgroundReplay,
    model_events,
    wait_for_progress,
    wait_until,
)
from tests.integration.retraining import (
    LEAGUE,
    Shots,
    cli,
    log_loss,
    on_unseen_league_shots,
    train_league_champion,
)

pytestmark = pytest.mark.integration


def _cut_short(settings, version: str, shots_frame) -> str:
    """An underfit champion: one split (a LightGBM stopped after its first two-leaf tree) on
    the shots ``version`` learned, registered in ``version``'s run (so it keeps the validation
    window logged there) with its tags (so it records the same lineage, which is what a retrain
    reads from a champion), and made champion.  It ranks and prices shots far worse than a
    whole model on the same data: on December 2018's 2,000-shot windows its ROC-AUC is 0.03 to
    0.07 lower and its log loss 0.045 to 0.06 higher."""
    import lightgbm as lgb
    import mlflow

    from infra.mlflow_store import configure_mlflow
    from models.data import shot_ids
    from models.features import CATEGORICAL, FEATURE_NAMES, build_features
    from models.reference import validation_set
    from models.shot_model import ShotModel, log_shot_model

    frame = shots_frame[shots_frame["game_date"] <= int(LEAGUE[1])]
    features = build_features(frame)
    validated = validation_set(settings, version).all_ids
    ids = shot_ids(frame).astype(str)
    learned = (frame["game_date"] >= int(LEAGUE[0])).to_numpy() & ~ids.isin(validated).to_numpy()
    data = lgb.Dataset(
        features[learned],
        frame["made"].to_numpy()[learned],
        feature_name=list(FEATURE_NAMES),
        categorical_feature=list(CATEGORICAL),
    )
    params = {"objective": "binary", "num_leaves": 2, "verbosity": -1, "num_threads": 1}
    model = ShotModel("lightgbm", lgb.train(params, data, 1))
    client = registry.client(settings)
    source = client.get_model_version(settings.registered_model(), version)
    configure_mlflow(settings)
    with mlflow.start_run(run_id=source.run_id):
        info = log_shot_model(
            model, features[:5], registered_model_name=settings.registered_model()
        )
    short = str(info.registered_model_version)
    for key, value in source.tags.items():
        client.set_model_version_tag(settings.registered_model(), short, key, value)
    registry.set_champion(settings, short)
    return short


def test_asked_to_retrain_the_loop_promotes_a_clearly_better_challenger_and_the_stream_serves_it(
    services, settings_factory, pipeline, nba_csv, games_csv, shots_frame, tmp_path
):
    shadow_shots = 500
    settings = settings_factory(
        home=tmp_path / "home",
        model_name=f"promotes-{uuid.uuid4().hex[:6]}",
        outcome_timing="game",
        shadow_shots=shadow_shots,
        # Only a request retrains: every automatic trigger is off.
        retrain_min_new_labelled=0,
        retrain_every_s=0,
        retrain_drift_share=0,
        retrain_adwin=False,
        retrain_poll_s=1.0,
    )
    good = train_league_champion(settings, services, nba_csv)
    short = _cut_short(settings, good, shots_frame)
    assert registry.champion_version(settings) == short
    db = MongoClient(settings.mongodb())[settings.database()]
    endpoints, _ = services
    stream_log = settings.deployment_dir("logs") / "demo-stream.log"
    items = list(islice(CsvSource(games_csv), 5300))  # December 2018, in game order
    before, during, after = items[:3000], items[3000:5000], items[5000:]

    def labelled() -> int:
        return db.predictions.count_documents({"outcome": {"$exists": True}})

    with pipeline(settings):
        loop = start_process(settings, endpoints, "retrain-loop", "promotes-retrain.log")
        try:
            replay(settings, Shots(before, "before"), pacer=MaxPacer(), show_progress=False)
            wait_for_progress(labelled, len(before), "the first league shots labelled")

            asked = json.loads(cli(settings, services, "retrain-loop", "--request"))
            assert asked["requested"] == "manual"

            answered: list[dict] = []

            def decided():
                assert loop.poll() is None, f"retrain-loop exited with {loop.returncode}"
                done = db.retrain_events.find_one({"status": {"$ne": "started"}}, {"_id": 0})
                answered[:] = [done] if done else []
                return bool(done) or "not yet"

            wait_until(decided, 300, "the loop to answer the request", interval=1.0)
            retrain = answered[0]
            assert retrain["status"] == "shadowing", retrain
            assert retrain["reasons"] == ["manual"] and retrain["request"] == "manual"
            challenger = retrain["training"]["version"]
            assert registry.champion_version(settings) == short
            wait_until(
                lambda: (
                    f"v{challenger} of {settings.registered_model()} scores in shadow"
                    in stream_log.read_text(errors="replace")
                ),
                60,
                "the stream to score the challenger in shadow",
            )

            replaying = BackgroundReplay(settings, Shots(during, "during"), rate=250)

            def promoted():
                assert loop.poll() is None, f"retrain-loop exited with {loop.returncode}"
                return registry.champion_version(settings) == challenger or "not yet"

            wait_until(promoted, 300, "the loop to promote its challenger", interval=1.0)
            replaying.result(300)
            wait_until(
                lambda: (
                    f"swapped from v{short} to v{challenger}"
                    in stream_log.read_text(errors="replace")
                ),
                60,
                "the stream to swap the challenger in",
            )
            replay(settings, Shots(after, "after"), pacer=MaxPacer(), show_progress=False)
            wait_for_progress(labelled, len(items), "every league shot labelled")
        finally:
            stop_process(loop)

    # The decisions, as a subscriber to models.events sees them.
    events = model_events(settings)
    assert [e["event"] for e in events][:2] == ["shadowing", "promoted"], events
    assert (events[0]["version"], events[0]["challenger_version"]) == (short, challenger)
    assert (events[1]["version"], events[1]["previous_version"]) == (challenger, short)
    assert events[1]["automatic"] is True, events[1]
    retrain = db.retrain_events.find_one({"training.version": challenger})
    assert retrain["shadow"]["decision"] == "promoted", retrain

    # The truth behind the shadow's verdict, from what the store holds: on the labelled shots
    # scored by both, the challenger's log loss is clearly below the underfit champion's.
    judged = list(
        db.predictions.find(
            {"model_version": short, "shadow_version": challenger, "outcome": {"$exists": True}},
            {"outcome": 1, "p_champion": 1, "p_shadow": 1},
        )
    )
    assert len(judged) >= shadow_shots
    y = np.array([d["outcome"] for d in judged], dtype=float)
    served, beside = (np.array([d[k] for d in judged]) for k in ("p_champion", "p_shadow"))
    live = {"short": log_loss(y, served), "challenger": log_loss(y, beside)}
    truth = on_unseen_league_shots(settings, shots_frame, short, challenger, good)
    print(
        f"live on {len(judged)} shots: underfit v{short} {live['short']:.4f}, challenger "
        f"v{challenger} {live['challenger']:.4f}; unseen league shots: underfit "
        f"{truth[short]:.4f}, challenger {truth[challenger]:.4f}, whole v{good} {truth[good]:.4f}"
    )
    assert live["challenger"] < live["short"] - 0.01
    assert roc_auc_score(y, beside) > roc_auc_score(y, served)
    # Better where neither learned, and as good as a whole model on the champion's data.
    assert truth[challenger] < truth[short] - 0.01
    assert truth[challenger] < truth[good] + 0.005

    # The shots replayed after the swap were served by the promoted challenger.
    served_by = {
        d["shot_id"]: d["model_version"]
        for d in db.predictions.find({}, {"shot_id": 1, "model_version": 1})
    }
    assert len(served_by) == len(items)
    assert {served_by[item.shot["shot_id"]] for item in after} == {challenger}
