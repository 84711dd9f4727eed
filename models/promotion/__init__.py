"""Champion and challenger: a registered version takes the champion alias only when it does better
on the same recent labelled shots, and the promotion can be rolled back.

The evidence is what the pipeline stored: the most recent ``window`` labelled predictions in
MongoDB, joined by shot id to the raw shots, turned into features by the same
:func:`models.features.build_features` the stream uses, and scored by both versions.  The rule
(:func:`decide`) puts log loss first -- the stream sells fair odds, so the probabilities must be
right -- with ROC-AUC as a guard: a challenger must lower log loss by at least ``margin`` and must
not rank the shots worse.

Every decision is recorded three ways: tags on the versions, the aliases (``champion`` and
``previous-champion``) and one JSON event on ``models.events``, on which the running stream
workers swap models.  The aliases are the truth; the event is the notice.

One module per part: :mod:`~models.promotion.window` (the evidence),
:mod:`~models.promotion.decision` (the rule), :mod:`~models.promotion.events` (the record on
``models.events``) and :mod:`~models.promotion.challenge` (challenge and rollback).
"""

from models.promotion.challenge import TAG_PREFIX, challenge, rollback
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
    EVENTS,
    PROMOTED,
    REFUSED,
    ROLLED_BACK,
    SWAP_EVENTS,
    Decision,
    Publisher,
    parse_event,
    publish_event,
)
from models.promotion.window import Window, labelled_window, window_from_documents

__all__ = [
    "DEFAULT_CALIBRATION_MARGIN",
    "DEFAULT_MARGIN",
    "EVENTS",
    "MIN_LABELLED",
    "PROMOTED",
    "REFUSED",
    "ROLLED_BACK",
    "SWAP_EVENTS",
    "TAG_PREFIX",
    "Decision",
    "PromotionError",
    "Publisher",
    "Verdict",
    "Window",
    "challenge",
    "chance_calibration_error",
    "decide",
    "labelled_window",
    "parse_event",
    "publish_event",
    "rollback",
    "window_from_documents",
]
