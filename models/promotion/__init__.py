"""Champion and challenger: a registered version takes the champion alias only when it does better
on the same recent labelled shots, is no worse on the champion's own validation window, and
then does better live, in shadow; a new champion that does worse live is rolled back.

The evidence is what the pipeline stored: the most recent ``window`` labelled predictions in
MongoDB, joined by shot id to the raw shots, turned into features by the same
:func:`models.features.build_features` the stream uses, and scored by both versions.  The rule
(:func:`decide`) puts log loss first -- the stream sells fair odds, so the probabilities must be
right -- with ROC-AUC as a guard: a challenger must lower log loss by at least ``margin`` and must
not rank the shots worse.  A recent window that does not cover the league makes the challenge
wait, and the champion's validation window is a fixed reference the challenger must not be
worse on (:mod:`~models.promotion.gate`).

Every decision is recorded three ways: tags on the versions, the aliases (``champion``,
``previous-champion`` and ``shadow``) and one JSON event on ``models.events``, on which the
running stream workers swap models and start or stop scoring a shadow.  The aliases are the
truth; the event is the notice.

One module per part: :mod:`~models.promotion.window` (the evidence),
:mod:`~models.promotion.decision` (the rule), :mod:`~models.promotion.gate` (coverage and the
reference set), :mod:`~models.promotion.events` (the record on ``models.events``),
:mod:`~models.promotion.challenge` (the offline challenge), :mod:`~models.promotion.moves`
(promotion and rollback), :mod:`~models.promotion.shadow` (shadow scoring's terms and rule) and
:mod:`~models.promotion.judge` (the retrain loop's judge of a shadow).
"""

from models.promotion.challenge import TAG_PREFIX, challenge
from models.promotion.decision import (
    DEFAULT_CALIBRATION_MARGIN,
    DEFAULT_MARGIN,
    MIN_LABELLED,
    PromotionError,
    Verdict,
    chance_calibration_error,
    decide,
)
from models.promotion.events import (
    CONFIRMED,
    EVENTS,
    PROMOTED,
    REFUSED,
    ROLLED_BACK,
    SHADOWING,
    SWAP_EVENTS,
    Decision,
    Publisher,
    parse_event,
    publish_event,
)
from models.promotion.gate import coverage_problem, reference_verdict
from models.promotion.moves import promote, rollback
from models.promotion.window import Window, labelled_window, window_from_documents

__all__ = [
    "CONFIRMED",
    "DEFAULT_CALIBRATION_MARGIN",
    "DEFAULT_MARGIN",
    "EVENTS",
    "MIN_LABELLED",
    "PROMOTED",
    "REFUSED",
    "ROLLED_BACK",
    "SHADOWING",
    "SWAP_EVENTS",
    "TAG_PREFIX",
    "Decision",
    "PromotionError",
    "Publisher",
    "Verdict",
    "Window",
    "challenge",
    "chance_calibration_error",
    "coverage_problem",
    "decide",
    "labelled_window",
    "parse_event",
    "promote",
    "publish_event",
    "reference_verdict",
    "rollback",
    "window_from_documents",
]
