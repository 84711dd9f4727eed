"""The same checks on every candidate `parivision train` compares (a new one gets them free)."""

import pickle

import numpy as np
import pytest

from models.candidates import CANDIDATES, make_candidates
from models.features import FEATURE_NAMES
from models.metrics import base_rate_log_loss, score
from models.shot_model import ShotModel


@pytest.fixture(scope="module", params=sorted(CANDIDATES))
def fitted(request, fit_and_check):
    x_fit, y_fit, _, _ = fit_and_check
    candidate = CANDIDATES[request.param]()
    return candidate, candidate.fit(x_fit, y_fit)


def test_beats_the_base_rate_on_later_real_shots(fitted, fit_and_check):
    _, y_fit, x_check, y_check = fit_and_check
    candidate, model = fitted
    metrics = score(y_check, model.predict(x_check))
    # The base rate is ~0.690 here; every candidate should clear it by a visible margin.
    assert metrics["log_loss"] < base_rate_log_loss(y_fit, y_check) - 0.03, candidate.name
    assert metrics["roc_auc"] > 0.62, candidate.name


def test_answers_probabilities_under_the_feature_names(fitted, fit_and_check):
    _, _, x_check, _ = fit_and_check
    candidate, model = fitted
    p = model.predict(x_check[:500])
    assert isinstance(model, ShotModel) and model.candidate == candidate.name
    assert p.shape == (500,) and np.all((p > 0) & (p < 1))
    assert model.feature_name() == list(FEATURE_NAMES)


def test_survives_a_pickle_round_trip(fitted, fit_and_check):
    _, _, x_check, _ = fit_and_check
    _, model = fitted
    again = pickle.loads(pickle.dumps(model))
    # Not bit-identical: the forest sums its trees' votes in parallel, in no fixed order.
    np.testing.assert_allclose(
        again.predict(x_check[:200]), model.predict(x_check[:200]), rtol=1e-12
    )


def test_scores_a_shot_with_an_unknown_zone(fitted, fit_and_check):
    _, _, x_check, _ = fit_and_check
    _, model = fitted
    rows = x_check[:3].copy()
    rows[:, FEATURE_NAMES.index("zone_basic")] = np.nan  # what build_features gives a new zone
    p = model.predict(rows)
    assert np.all(np.isfinite(p) & (p > 0) & (p < 1))


def test_importance_has_one_finite_value_per_feature(fitted, fit_and_check):
    _, _, x_check, y_check = fit_and_check
    candidate, model = fitted
    values, kind = candidate.importance(model, x_check[:1000], y_check[:1000])
    assert len(values) == len(FEATURE_NAMES) and np.all(np.isfinite(values)) and kind
    assert np.max(values) > 0


def test_params_are_the_constructor_arguments_and_fit_info_is_logged_beside():
    (forest,) = make_candidates(["random_forest"])
    assert forest.params()["n_estimators"] == 100 and "fit_info" not in forest.params()


def test_unknown_candidate_names_say_what_exists():
    with pytest.raises(ValueError, match="unknown candidate boosted_llm: choose from logreg"):
        make_candidates(["lightgbm", "boosted_llm"])


@pytest.mark.parametrize("name", sorted(CANDIDATES))
def test_recent_shots_weigh_more_when_weighted_by_recency(name, fit_and_check):
    # The same real shots twice over: first made at a high rate, then (the recent half) at a
    # low one.  Unweighted, a model sits between the two; weighted towards the recent half it
    # must move towards the recent rate.
    x_fit, _, x_check, _ = fit_and_check
    x = np.vstack([x_fit[:4000], x_fit[:4000]])
    rng = np.random.default_rng(5)
    y = np.concatenate([rng.random(4000) < 0.65, rng.random(4000) < 0.35]).astype(np.int64)
    weight = np.concatenate([np.full(4000, 0.05), np.ones(4000)])
    plain = CANDIDATES[name]().fit(x, y).predict(x_check[:2000]).mean()
    recent = CANDIDATES[name]().fit(x, y, weight).predict(x_check[:2000]).mean()
    assert plain > 0.42 and recent < 0.42 and recent < plain - 0.05, (name, plain, recent)
