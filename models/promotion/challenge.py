"""Challenge and rollback: measure a challenger against the champion on the same window, move
the aliases, tag both versions and publish the decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import numpy as np

from models import registry
from models.metrics import score
from models.promotion.decision import MIN_LABELLED, PromotionError, Verdict, decide
from models.promotion.events import (
    PROMOTED,
    REFUSED,
    ROLLED_BACK,
    Decision,
    Publisher,
    finite,
    publish_event,
)
from models.promotion.window import Window, read_window
from parivision.settings import Settings

# Tags written on the challenger; a later challenge of the same version overwrites them.
TAG_PREFIX = "challenge."


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


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
    publish: Publisher | None = None,
) -> Decision:
    """Measure a registered version against the champion on recent labelled shots; promote it
    if :func:`decide` says so.

    Args:
        settings: where the registry, MongoDB and Kafka are, and the model name.
        challenger_version: a version number (``3`` or ``v3``) or an alias.
        window: how many of the most recently labelled shots to measure on (default
            ``settings.promotion_window``).
        margin: how much lower the challenger's log loss must be (default
            ``settings.promotion_margin``).
        min_labelled: refuse when the window holds fewer labelled shots than this.
        db: the MongoDB database to read (default: the one the settings name).
        publish: sends the event (default :func:`publish_event` to ``models.events``).

    Returns:
        The decision; it is also tagged on the versions and published.

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
        "model": settings.model_name,
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
    if before is None:
        verdict = Verdict(True, "there is no champion yet")
    elif stale:
        verdict = Verdict(True, f"the champion cannot be served any more: {stale}")
    elif not enough:
        verdict = Verdict(
            False,
            f"only {data.rows} usable labelled shots in MongoDB "
            f"({settings.mongodb_database!r}) with "
            f"{len(np.unique(data.outcomes))} outcome(s); at least {min_labelled} with both "
            "made and missed are needed to compare: replay shots through the stream and sink "
            "until their outcomes arrive, then run promote again",
        )
    else:
        try:
            champion_model = registry.load_version(settings, before)
        except registry.BadModelError as error:
            # A champion that cannot be served any more (its artifact lost or damaged) is no
            # bar to clear: the workers already refuse it and score with an older one.
            champion_model = None
            verdict = Verdict(True, f"the champion cannot be served any more: {error.reason}")
        if champion_model is not None:
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
    described["dated_in_training_window"] = in_training

    if verdict.promote and registry.champion_version(settings) != before:
        current = registry.champion_version(settings)
        verdict = Verdict(
            False,
            f"the champion changed from v{before} to v{current} while this challenge ran; "
            "run promote again",
        )
    decision = Decision(
        PROMOTED if verdict.promote else REFUSED,
        version=challenger if verdict.promote else before,
        reason=verdict.reason,
        metrics=metrics,
        window=described,
        **base,
    )
    stamp = _iso(decision.at)
    if verdict.promote:
        # previous-champion always names the version this promotion replaced (or none).
        if before is not None:
            registry.set_alias(settings, registry.PREVIOUS_CHAMPION_ALIAS, before)
        else:
            registry.delete_alias(settings, registry.PREVIOUS_CHAMPION_ALIAS)
        registry.set_champion(settings, challenger)
        if before is not None:
            registry.tag_version(
                settings, before, {"replaced_by": challenger, "replaced_at": stamp}
            )
    champion_metrics, challenger_metrics = (
        metrics.get("champion", {}),
        metrics.get("challenger", {}),
    )
    registry.tag_version(
        settings,
        challenger,
        {
            f"{TAG_PREFIX}decision": decision.event,
            f"{TAG_PREFIX}reason": decision.reason[:4000],
            f"{TAG_PREFIX}champion_version": before or "none",
            **{
                f"{TAG_PREFIX}{side}_{name}": _tag_number(values.get(name))
                for side, values in (
                    ("champion", champion_metrics),
                    ("challenger", challenger_metrics),
                )
                for name in ("log_loss", "roc_auc")
            },
            f"{TAG_PREFIX}window_shots": data.rows,
            f"{TAG_PREFIX}window_requested": window,
            f"{TAG_PREFIX}window_first_labelled_at": _iso(data.first_labelled_at),
            f"{TAG_PREFIX}window_last_labelled_at": _iso(data.last_labelled_at),
            f"{TAG_PREFIX}margin": f"{margin:g}",
            f"{TAG_PREFIX}decided_at": stamp,
            # Champion again: no longer replaced by anyone.
            **({"replaced_by": None, "replaced_at": None} if verdict.promote else {}),
        },
    )
    publish(settings, decision.as_event())
    return decision


def _tag_number(value: float | None) -> str | None:
    value = finite(value) if value is not None else None
    return None if value is None else f"{value:.6f}"


def rollback(settings: Settings, *, publish: Publisher | None = None) -> Decision:
    """Give the champion alias back to the version the last promotion replaced.

    One level deep: the ``previous-champion`` alias is removed by the rollback, so a second
    rollback in a row is refused rather than undoing the first.

    Raises:
        PromotionError: there is no previous champion to restore.
    """
    publish = publish or publish_event
    current = registry.champion_version(settings)
    previous = registry.alias_version(settings, registry.PREVIOUS_CHAMPION_ALIAS)
    if previous is None or previous == current:
        if previous is not None:
            registry.delete_alias(settings, registry.PREVIOUS_CHAMPION_ALIAS)
        raise PromotionError(
            f"{settings.model_name!r} has no previous champion to roll back to (only the last "
            f"promotion can be undone, once); the champion is "
            f"{'v' + current if current else 'not set'}: `parivision promote VERSION` names one"
        )
    decision = Decision(
        ROLLED_BACK,
        model=settings.model_name,
        version=previous,
        previous_version=current,
        challenger_version=None,
        reason=f"rolled back from v{current} to v{previous}",
    )
    stamp = _iso(decision.at)
    registry.set_champion(settings, previous)
    registry.delete_alias(settings, registry.PREVIOUS_CHAMPION_ALIAS)
    if current is not None:
        registry.tag_version(
            settings,
            current,
            {"replaced_by": previous, "replaced_at": stamp, "rolled_back_at": stamp},
        )
    registry.tag_version(
        settings, previous, {"replaced_by": None, "replaced_at": None, "restored_at": stamp}
    )
    publish(settings, decision.as_event())
    return decision
