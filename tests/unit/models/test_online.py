"""Every registered online learner honours River's protocol and survives a pickle round trip."""

from __future__ import annotations

import pickle

import pytest

from models.features import build_features, feature_dict
from models.online import LEARNERS, LiveMetrics, make_learner


@pytest.fixture(scope="module")
def real_rows(shots_frame):
    rows = shots_frame.iloc[60_000:61_000]
    return [feature_dict(row) for row in build_features(rows)], rows["made"].tolist()


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_learner_predicts_a_probability_and_pickles_to_the_same_predictions(name, real_rows):
    features, made = real_rows
    learner = make_learner(name)
    for x, y in zip(features[:800], made[:800], strict=True):
        learner.predict_proba_one(x)
        learner.learn_one(x, bool(y))
    copy = pickle.loads(pickle.dumps(learner))
    for x in features[800:]:
        p = learner.predict_proba_one(x).get(True, 0.5)
        assert 0.0 <= p <= 1.0
        assert copy.predict_proba_one(x).get(True, 0.5) == p


def test_learner_tolerates_a_missing_feature(real_rows):
    features, _ = real_rows
    x = dict(features[0])
    x.pop("x")
    for name in LEARNERS:
        make_learner(name).learn_one(x, True)


def test_unknown_learner_names_the_known_ones():
    with pytest.raises(ValueError, match="logreg"):
        make_learner("nope")


def test_live_metrics_count_and_score():
    metrics = LiveMetrics()
    for made, p in [(1, 0.9), (0, 0.1), (1, 0.8), (0, 0.3)]:
        metrics.update(made, p)
    result = metrics.as_dict()
    assert result["n"] == 4 and result["roc_auc"] == 1.0 and result["log_loss"] < 0.25
