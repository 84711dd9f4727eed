"""Every registered online learner honours River's protocol and survives a pickle round trip;
the bias learner against worked examples."""

from __future__ import annotations

import doctest
import math
import pickle

import numpy as np
import pytest

from models.features import build_features, feature_dict
from models.online import (
    CHAMPION_LOGIT,
    LEARNERS,
    PLAYER_ID,
    TEAM_ID,
    LiveMetrics,
    learner_features,
    learner_input,
    make_learner,
)
from models.online_bias import ChampionBias


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


# The learner that corrects the champion per action type, team and player (models.online_bias).


def _bias(levels=None) -> ChampionBias:
    return ChampionBias(levels)


@pytest.mark.parametrize("p", [0.0001, 0.2, 0.5, 0.73, 0.9999])
@pytest.mark.parametrize(
    "shot", [{"player_id": 201939, "team_id": 1610612744}, {"player_id": None}, None]
)
def test_bias_learner_starts_as_the_champion(p, shot):
    learner = make_learner("bias")
    seen = {"zone_basic": 2.0, "action_jump": 1.0, "action_pullup": 1.0}
    x = learner_input(learner, seen, p, shot)
    assert x[CHAMPION_LOGIT] == pytest.approx(math.log(p / (1 - p)))
    assert learner.predict_proba_one(x)[True] == pytest.approx(p, abs=1e-12)


def test_bias_learner_is_given_the_shooters_ids():
    x = learner_input(make_learner("bias"), {"x": 1.0}, 0.5, {"player_id": 7, "team_id": 2})
    assert (x[PLAYER_ID], x[TEAM_ID]) == (7, 2)


def test_one_make_moves_each_bias_by_its_share_of_a_newton_step():
    # Worked by hand: the champion says 0.5, so the log loss's slope is 1 - 0.5 = 0.5 and its
    # curvature 0.5 * 0.5 = 0.25; the margin's variance is 0.3^2 + 0.1^2 = 0.1, so the step is
    # 0.5 / (1 + 0.25 * 0.1) = 0.487805, and each bias takes its variance times it.
    learner = _bias({"league": (0.3, 0.0), "player": (0.1, 0.0)})
    x = {CHAMPION_LOGIT: 0.0, PLAYER_ID: 7}
    learner.learn_one(x, True)
    biases = learner.biases(x)
    assert biases["league"] == pytest.approx(0.09 * 0.487805, abs=1e-6)  # 0.043902
    assert biases["player"] == pytest.approx(0.01 * 0.487805, abs=1e-6)  # 0.004878
    assert learner.predict_proba_one(x)[True] == pytest.approx(1 / (1 + math.exp(-0.04878)))


def test_a_players_bias_after_200_outcomes_is_the_posterior_mode():
    # 140 makes in 200 where the champion says 0.45, prior sd 0.1 on the player's bias.  The
    # brief's one Newton step from 0 gives sum(y - p) / (1 / sd^2 + sum p(1 - p))
    # = (140 - 90) / (100 + 49.5) = 0.3344; the mode of the posterior solves
    # 200 * (0.7 - sigmoid(logit(0.45) + b)) = b / 0.01, found here by bisection.
    logit = math.log(0.45 / 0.55)
    low, high = 0.0, 1.0
    for _ in range(60):
        mid = (low + high) / 2
        if 200 * (0.7 - 1 / (1 + math.exp(-(logit + mid)))) > mid / 0.01:
            low = mid
        else:
            high = mid
    assert 0.325 < low < 0.335  # the mode, a little below the one step
    learner = _bias({"player": (0.1, 0.0)})
    x = {CHAMPION_LOGIT: logit, PLAYER_ID: 7}
    for i in range(200):
        learner.learn_one(x, i % 10 < 7)
    assert learner.biases(x)["player"] == pytest.approx(low, abs=0.01)


def test_a_player_who_makes_everything_moves_up_within_100_shots_others_stay(shots_frame):
    # 5,000 real shots (their players, teams, zones and action types), each going in as often
    # as the champion says; one learner also sees player 1 make 100 of 100, one shot in 50.
    rows = shots_frame.iloc[60_000:65_000]
    features = [learner_features(feature_dict(row)) for row in build_features(rows)]
    rng = np.random.default_rng(11)
    p_champion = rng.uniform(0.3, 0.6, len(rows))
    made = rng.random(len(rows)) < p_champion
    shots = rows[["player_id", "team_id"]].to_dict("records")
    learner, without = make_learner("bias"), make_learner("bias")
    others = []
    for i, (seen, shot, p, y) in enumerate(zip(features, shots, p_champion, made, strict=True)):
        if i % 50 == 0:
            learner.learn_one(learner_input(learner, seen, p, {**shot, "player_id": 1}), True)
            continue
        x = learner_input(learner, seen, p, shot)
        learner.learn_one(x, bool(y))
        without.learn_one(x, bool(y))
        others.append(x)
    # Up 13 points from the champion's 0.45, where the champion's form alone would not move
    # (the champion's own player form follows a hot hand too; this learner adds to it).
    hot = learner_input(learner, features[0], 0.45, {**shots[0], "player_id": 1})
    assert learner.predict_proba_one(hot)[True] > 0.58
    # His makes also lift the league, by about 55 more makes than the champion said in 5,000.
    moved = [
        learner.predict_proba_one(x)[True] - without.predict_proba_one(x)[True] for x in others
    ]
    assert 0.0 < np.mean(moved) < 0.012 and np.max(np.abs(moved)) < 0.03


def test_bias_learner_pickles_to_the_same_predictions_and_learning(shots_frame):
    rows = shots_frame.iloc[61_000:61_400]
    features = [learner_features(feature_dict(row)) for row in build_features(rows)]
    shots = rows[["player_id", "team_id"]].to_dict("records")
    made = rows["made"].tolist()
    learner = make_learner("bias")
    xs = [learner_input(learner, f, 0.46, s) for f, s in zip(features, shots, strict=True)]
    for x, y in zip(xs[:200], made[:200], strict=True):
        learner.learn_one(x, bool(y))
    copy = pickle.loads(pickle.dumps(learner))
    for x, y in zip(xs[200:], made[200:], strict=True):
        assert copy.predict_proba_one(x) == learner.predict_proba_one(x)
        learner.learn_one(x, bool(y))
        copy.learn_one(x, bool(y))
    assert copy.biases(xs[-1]) == learner.biases(xs[-1])


def test_bias_learner_refuses_an_unknown_level():
    with pytest.raises(ValueError, match="player_zone"):
        ChampionBias({"opponent": (0.1, 0.0)})


def test_bias_learner_docstring_examples_run():
    import models.online_bias

    result = doctest.testmod(models.online_bias)
    assert result.attempted > 0 and result.failed == 0
