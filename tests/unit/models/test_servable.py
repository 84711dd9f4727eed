"""The checks a loaded model passes before it is served: every candidate passes them, and the
ways a model fails them are named."""

from __future__ import annotations

import re

import numpy as np
import pytest

from models.candidates import CANDIDATES
from models.features import FEATURE_NAMES
from models.servable import PROBE_SHOTS, feature_mismatch, prediction_problem, probe_matrix

# Fewer rounds than by default: the probe asks what a model answers, not how well.
QUICK = {"hist_gb": {"max_iter": 20}}


@pytest.mark.parametrize("name", sorted(CANDIDATES))
def test_every_candidate_answers_the_probe_with_probabilities(name, fit_and_check):
    x_fit, y_fit, _, _ = fit_and_check
    candidate = CANDIDATES[name](**QUICK.get(name, {}))
    assert prediction_problem(candidate.fit(x_fit[:3000], y_fit[:3000])) is None


def test_the_probe_holds_what_live_shots_hold_unknown_zones_and_form():
    matrix = probe_matrix()
    assert matrix.shape == (len(PROBE_SHOTS), len(FEATURE_NAMES))
    assert np.isnan(matrix[-1, FEATURE_NAMES.index("zone_basic")])  # a zone this code lacks
    # Later shots of a player carry the form of his earlier ones.
    assert matrix[:, FEATURE_NAMES.index("game_shots_before")].max() >= 2


class _Answers:
    def __init__(self, answer):
        self.answer = answer

    def predict(self, matrix):
        return self.answer(matrix)


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (lambda m: np.full(len(m), 0.5), None),
        (lambda m: np.full(len(m), 1.5), r"answers 1.5, 1.5, 1.5 for 8 of 8 probe shots: not prob"),
        (lambda m: -np.ones(len(m)), r"answers -1, -1, -1 for 8 of 8"),
        (lambda m: np.r_[np.full(len(m) - 1, 0.4), np.inf], r"answers inf for 1 of 8"),
        (lambda m: np.full((len(m), 2), 0.5), r"answers a \(8, 2\) array for a probe batch of 8"),
        (lambda m: np.full(len(m) - 1, 0.5), r"answers a \(7,\) array"),
        (lambda m: m[:, 99], r"fails on a probe batch of 8 shots \(IndexError: "),
    ],
)
def test_answers_that_are_not_one_probability_per_shot_are_named(answer, why):
    problem = prediction_problem(_Answers(answer))
    if why is None:
        assert problem is None
    else:
        assert problem is not None and re.search(why, problem), problem


def test_a_feature_mismatch_says_what_is_missing_or_extra_or_reordered():
    assert feature_mismatch(FEATURE_NAMES) is None
    shuffled = (*FEATURE_NAMES[1:], FEATURE_NAMES[0])
    assert feature_mismatch(shuffled).endswith("the same columns in another order")
    fewer = feature_mismatch(FEATURE_NAMES[:-1])
    assert f"fitted on {len(FEATURE_NAMES) - 1} feature columns" in fewer
    assert fewer.endswith(f"without {FEATURE_NAMES[-1]}")
    extra = feature_mismatch((*FEATURE_NAMES, "a", "b", "c", "d", "e", "f", "g"))
    assert extra.endswith("with a, b, c, d, e and 2 more, which this code does not compute")
