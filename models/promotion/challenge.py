"""The offline challenge: measure a challenger against the champion on the recent window and on
the champion's validation window, then promote it, start its shadow, or refuse it.

The order of the checks is the order of what a user would ask: is there a champion to beat
(none, or one that cannot be served: promote), are there enough labelled shots, does the recent
window cover the league (else wait), does the challenger beat the champion on it
(:func:`~models.promotion.decision.decide`), and is it no worse on the champion's own validation
window (:func:`~models.promotion.gate.reference_verdict`).  A challenger that passes shadows the
champion live (:mod:`~models.promotion.shadow`) before it is promoted, unless shadows are off
(``shadow_shots`` 0) or ``now`` is asked.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from models import registry
from models.metrics import score
from models.promotion import shadow as shadows
from models.promotion.decision import MIN_LABELLED, Verdict, decide
from models.promotion.events import (
    PROMOTED,
    REFUSED,
    SHADOWING,
    Decision,
    Publisher,
    finite,
    publish_event,
)
from models.promotion.gate import coverage_problem, measure_reference, reference_verdict
from models.promotion.moves import iso, promote
from models.promotion.window import Window, read_window
from models.reference import validation_set
from parivision.settings import Settings

# Tags written on the challenger; a later challenge of the same version overwrites them.
TAG_PREFIX = "challenge."


def _measure(model: registry.Champion, window: Window) -> dict[str, float]:
    return {**score(window.outcomes, model.predict(window.features)), "rows": window.rows}


def _dated_within(tags: Mapping[str, str], dates: np.ndarray) -> int | None:
    """How many window shots are dated inside a version's training and validation windows."""
    start, end = tags.get("train_from"), tags.get("valid_to") or tags.get("train_to")
    if not (start and end and start.isdigit() and end.isdigit()):
        return None
    return int(((dates >= int(start)) & (dates <= int(end))).sum())


def challenge(
    settings: Settings,
    challenger_version: str,
    *,
    window: int | None = None,
    margin: float | None = None,
    min_labelled: int = MIN_LABELLED,
    db=None,
    now: bool = False,
    publish: Publisher | None = None,
) -> Decision:
    """Measure a registered version against the champion; promote it, or start its shadow, if
    it passes every check.

    Args:
        settings: where the registry, MongoDB and Kafka are, the model name and the gate's
            settings (``promotion_*``, ``shadow_shots``).
        challenger_version: a version number (``3`` or ``v3``) or an alias.
        window: how many of the most recently labelled shots to measure on (default
            ``settings.promotion_window``).
        margin: how much lower the challenger's log loss must be (default
            ``settings.promotion_margin``).
        min_labelled: refuse when the window holds fewer labelled shots than this.
        db: the MongoDB database to read (default: the one the settings name).
        now: promote at once when the checks pass, without a shadow first.
        publish: sends the event (default :func:`publish_event` to ``models.events``).

    Returns:
        The decision (``promoted``, ``shadowing`` or ``refused``); it is also tagged on the
        versions and published.

    Raises:
        LookupError: there is no such version.
        ValueError: a version was trained on other features, or ``window`` is not positive.
        PromotionError: MongoDB or Kafka could not be used.
    """
    window = settings.promotion_window if window is None else window
    margin = settings.promotion_margin if margin is None else margin
    if window < 1:
        raise ValueError(f"the window must hold at least one shot, not {window}")
    if not margin >= 0:
        raise ValueError(f"the log-loss margin must be 0 or more, not {margin}")
    publish = publish or publish_event
    challenger = registry.resolve_version(settings, str(challenger_version))
    before = registry.champion_version(settings)
    base = {
        "model": settings.registered_model(),
        "previous_version": before,
        "challenger_version": challenger,
        "margin": margin,
    }
    if challenger == before:
        decision = Decision(
            REFUSED, version=before, reason=f"v{challenger} is already the champion", **base
        )
        publish(settings, decision.as_event())
        return decision

    data = read_window(settings, db, window)
    described = data.describe()
    challenger_model = registry.load_version(settings, challenger)
    metrics: dict[str, dict[str, float]] = {}
    enough = data.rows >= min_labelled and len(np.unique(data.outcomes)) == 2
    if enough:
        metrics["challenger"] = _measure(challenger_model, data)
    in_training = {
        "challenger": _dated_within(registry.version_tags(settings, challenger), data.game_dates)
    }

    stale = registry.stale_feature_set(settings, before) if before is not None else None
    first = before is None or bool(stale)
    if before is None:
        verdict = Verdict(True, "there is no champion yet")
    elif stale:
        verdict = Verdict(True, f"the champion cannot be served any more: {stale}")
    elif not enough:
        verdict = Verdict(
            False,
            f"only {data.rows} usable labelled shots in MongoDB "
            f"({settings.database()!r}) with "
            f"{len(np.unique(data.outcomes))} outcome(s); at least {min_labelled} with both "
            "made and missed are needed to compare: replay shots through the stream and sink "
            "until their outcomes arrive, then run promote again",
        )
    elif narrow := coverage_problem(data.coverage(), settings):
        verdict = Verdict(False, f"{narrow}; the challenge waits for a wider window")
    else:
        verdict, first = _against_champion(
            settings, before, challenger_model, data, metrics, in_training, margin, described
        )
    described["dated_in_training_window"] = in_training

    if verdict.promote and registry.champion_version(settings) != before:
        current = registry.champion_version(settings)
        verdict = Verdict(
            False,
            f"the champion changed from v{before} to v{current} while this challenge ran; "
            "run promote again",
        )
    watching = shadows.current_shadow(settings) if verdict.promote else None
    shadowing = verdict.promote and not first and not now and settings.shadow_shots > 0
    if shadowing and watching is not None and watching.version != challenger:
        verdict = Verdict(
            False,
            f"{verdict.reason}; but v{watching.version} is in shadow ({watching.role}, since "
            f"{iso(watching.started_at)}): one shadow at a time, challenge again after it ends",
        )
        shadowing = False
    tags = _challenge_tags(
        settings, before, data, window, margin, metrics, verdict, shadowing=shadowing
    )
    if verdict.promote and not shadowing:
        how = "first" if first else "challenge"
        return promote(
            settings,
            challenger,
            reason=verdict.reason,
            how=how,
            metrics=metrics,
            window=described,
            margin=margin,
            publish=publish,
            tags=tags,
        )
    registry.tag_version(settings, challenger, tags)
    if shadowing:
        started = shadows.begin(settings, challenger, shadows.CHALLENGER, str(before))
        decision = Decision(
            SHADOWING,
            version=before,
            reason=f"{verdict.reason}; now in shadow for {started.shots:,} labelled shots",
            metrics=metrics,
            window=described,
            shadow=started.describe(),
            **base,
        )
    else:
        decision = Decision(
            REFUSED,
            version=before,
            reason=verdict.reason,
            metrics=metrics,
            window=described,
            **base,
        )
    publish(settings, decision.as_event())
    return decision


def _against_champion(
    settings: Settings,
    before: str,
    challenger_model: registry.Champion,
    data: Window,
    metrics: dict[str, dict[str, float]],
    in_training: dict[str, Any],
    margin: float,
    described: dict[str, Any],
) -> tuple[Verdict, bool]:
    """The recent window, then the champion's validation window; and whether the champion is
    no bar at all (it cannot be served)."""
    try:
        champion_model = registry.load_version(settings, before)
    except registry.BadModelError as error:
        # A champion that cannot be served any more (its artifact lost or damaged) is no
        # bar to clear: the workers already refuse it and score with an older one.
        return Verdict(True, f"the champion cannot be served any more: {error.reason}"), True
    metrics["champion"] = _measure(champion_model, data)
    in_training["champion"] = _dated_within(
        registry.version_tags(settings, before), data.game_dates
    )
    verdict = decide(
        metrics["champion"],
        metrics["challenger"],
        margin,
        settings.promotion_calibration_margin,
    )
    if not verdict.promote:
        return verdict, False
    reference = validation_set(settings, before)
    if reference is None or not reference.rows:
        described["reference"] = f"champion v{before} has no validation window logged"
        return Verdict(True, f"{verdict.reason}; {described['reference']}"), False
    measured = measure_reference(reference, champion_model, challenger_model)
    metrics["reference_champion"] = measured["champion"]
    metrics["reference_challenger"] = measured["challenger"]
    described["reference"] = reference.describe()
    held = reference_verdict(
        measured["champion"],
        measured["challenger"],
        settings.promotion_reference_margin,
        settings.promotion_calibration_margin,
    )
    if not held.promote:
        return held, False
    return Verdict(True, f"{verdict.reason}; {held.reason}"), False


def _challenge_tags(
    settings: Settings,
    before: str | None,
    data: Window,
    window: int,
    margin: float,
    metrics: dict[str, dict[str, float]],
    verdict: Verdict,
    *,
    shadowing: bool,
) -> dict[str, Any]:
    decision = PROMOTED if verdict.promote and not shadowing else REFUSED
    if shadowing:
        decision = SHADOWING
    return {
        f"{TAG_PREFIX}decision": decision,
        f"{TAG_PREFIX}reason": verdict.reason[:4000],
        f"{TAG_PREFIX}champion_version": before or "none",
        **{
            f"{TAG_PREFIX}{side}_{name}": _tag_number(metrics.get(side, {}).get(name))
            for side in ("champion", "challenger", "reference_champion", "reference_challenger")
            for name in ("log_loss", "roc_auc")
        },
        f"{TAG_PREFIX}window_shots": data.rows,
        f"{TAG_PREFIX}window_requested": window,
        f"{TAG_PREFIX}window_first_labelled_at": iso(data.first_labelled_at),
        f"{TAG_PREFIX}window_last_labelled_at": iso(data.last_labelled_at),
        f"{TAG_PREFIX}margin": f"{margin:g}",
        f"{TAG_PREFIX}decided_at": iso(time.time()),
    }


def _tag_number(value: float | None) -> str | None:
    value = finite(value) if value is not None else None
    return None if value is None else f"{value:.6f}"
