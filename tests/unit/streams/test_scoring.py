import lightgbm as lgb
import numpy as np
import pytest

from models.features import CATEGORICAL, FEATURE_NAMES, build_features
from models.registry import Champion
from streams.scoring import Scorer


@pytest.fixture(scope="module")
def champion(shots_frame):
    train = shots_frame.iloc[:20000]
    data = lgb.Dataset(
        build_features(train),
        train["made"].to_numpy(),
        feature_name=list(FEATURE_NAMES),
        categorical_feature=list(CATEGORICAL),
    )
    booster = lgb.train({"objective": "binary", "verbosity": -1, "num_threads": 1}, data, 30)
    return Champion(name="test", version="7", model=booster)


def _shots(frame, start, n):
    rows = frame.iloc[start : start + n]
    shots = rows.drop(columns=["made"]).to_dict("records")
    for shot in shots:
        shot["shot_id"] = f"{shot['game_id']}-{shot['game_event_id']}"
    return shots, rows["made"].tolist()


def test_batch_scores_match_the_champion_and_carry_fair_odds(champion, shots_frame):
    shots, _ = _shots(shots_frame, 30000, 64)
    records = Scorer(champion).score_batch(shots)
    expected = champion.model.predict(build_features(shots_frame.iloc[30000:30064]))
    assert [r["shot_id"] for r in records] == [s["shot_id"] for s in shots]
    np.testing.assert_allclose([r["p_champion"] for r in records], expected, rtol=1e-9)
    assert all(r["model_version"] == "7" and not r["labelled"] for r in records)
    assert all(r["fair_odds"] == pytest.approx(1 / r["p_champion"]) for r in records)


def test_online_learner_predicts_before_it_learns(champion, shots_frame):
    scorer = Scorer(champion)
    shots, made = _shots(shots_frame, 40000, 3000)
    first = scorer.score_batch(shots[:1])[0]
    assert first["p_online"] == 0.5  # has learned nothing yet
    labelled = scorer.label(first, made[0])
    assert labelled["p_online"] == 0.5 and labelled["outcome"] == made[0]
    for start in range(1, len(shots), 100):  # score a micro-batch, then its outcomes arrive
        batch = scorer.score_batch(shots[start : start + 100])
        for record, y in zip(batch, made[start : start + 100], strict=True):
            scorer.label(record, y)
    live = scorer.live_metrics()
    assert live["labelled"] == 3000
    # After 3,000 real shots both beat a coin on shots they had not learned from.
    assert live["online"]["roc_auc"] > 0.55 and live["champion"]["roc_auc"] > 0.55
    assert live["online"]["log_loss"] < 0.69


def test_kept_records_round_trip_through_the_compact_table_form(champion, shots_frame):
    import json

    from streams.scoring import compact, expand

    shots, _ = _shots(shots_frame, 50000, 20)
    for record in Scorer(champion).score_batch(shots):
        stored = json.loads(json.dumps(compact(record)))  # what the changelog carries
        assert expand(stored) == record
