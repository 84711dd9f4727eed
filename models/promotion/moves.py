"""Moving the champion alias: a promotion (after a challenge, a shadow, or by force) and a
rollback (by hand, or by the judge of a watch).

Every move is recorded three ways: the aliases (``champion``, ``previous-champion``,
``shadow``), tags on the versions, and one event on ``models.events``.  After any promotion the
previous champion shadows the new one (:mod:`models.promotion.shadow`, a *watch*), so a new
champion that does worse live is rolled back whoever promoted it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from models import registry
from models.promotion import shadow as shadows
from models.promotion.decision import PromotionError
from models.promotion.events import PROMOTED, ROLLED_BACK, Decision, Publisher, publish_event
from parivision.settings import Settings


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def promote(
    settings: Settings,
    version: str,
    *,
    reason: str,
    how: str,
    metrics: dict[str, dict[str, float]] | None = None,
    window: dict[str, Any] | None = None,
    margin: float | None = None,
    automatic: bool = False,
    publish: Publisher | None = None,
    tags: dict[str, Any] | None = None,
) -> Decision:
    """Give ``version`` the champion alias now, and set the previous champion to watch it.

    Args:
        how: ``challenge`` (passed the offline gate, no shadow asked), ``shadow`` (beat the
            champion live), ``forced`` (by a person, no gate), ``first`` (no champion yet).
        tags: more tags for the promoted version (the challenge's).
    """
    version = str(version)
    before = registry.champion_version(settings)
    decision = Decision(
        PROMOTED,
        model=settings.registered_model(),
        version=version,
        previous_version=before,
        challenger_version=version,
        reason=reason,
        metrics=metrics or {},
        window=window or {},
        margin=margin,
        automatic=automatic,
    )
    stamp = iso(decision.at)
    # previous-champion always names the version this promotion replaced (or none).
    if before is not None and before != version:
        registry.set_alias(settings, registry.PREVIOUS_CHAMPION_ALIAS, before)
    else:
        registry.delete_alias(settings, registry.PREVIOUS_CHAMPION_ALIAS)
    registry.set_champion(settings, version)
    # The moves a running stream follows first (the champion, the watch, the event), the tags
    # that record them after: a tag nobody waits on must not delay the swap.
    current = shadows.current_shadow(settings)
    if current is not None:
        # A challenger's shadow ends with its promotion; a watch of an older promotion with this
        # one (the new watch takes its place).
        shadows.end(settings, current, "ended", f"v{version} was promoted ({how})")
    if before is not None and before != version and settings.shadow_shots > 0:
        watch = shadows.begin(settings, before, shadows.WATCH, version)
        decision.shadow = watch.describe()
    publish = publish or publish_event
    publish(settings, decision.as_event())
    if before is not None and before != version:
        registry.tag_version(settings, before, {"replaced_by": version, "replaced_at": stamp})
    registry.tag_version(
        settings,
        version,
        {
            **(tags or {}),
            "promoted.how": how,
            "promoted.at": stamp,
            "promoted.reason": reason[:4000],
            # Champion again: no longer replaced by anyone.
            "replaced_by": None,
            "replaced_at": None,
        },
    )
    return decision


def rollback(
    settings: Settings,
    *,
    reason: str | None = None,
    automatic: bool = False,
    metrics: dict[str, dict[str, float]] | None = None,
    window: dict[str, Any] | None = None,
    shadow: dict[str, Any] | None = None,
    publish: Publisher | None = None,
) -> Decision:
    """Give the champion alias back to the version the last promotion replaced.

    One level deep: the ``previous-champion`` alias is removed by the rollback, so a second
    rollback in a row is refused rather than undoing the first.  A watch of the promotion
    ends with it.

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
            f"{settings.registered_model()!r} has no previous champion to roll back to (only the "
            f"last promotion can be undone, once); the champion is "
            f"{'v' + current if current else 'not set'}: `parivision promote VERSION` names one"
        )
    decision = Decision(
        ROLLED_BACK,
        model=settings.registered_model(),
        version=previous,
        previous_version=current,
        challenger_version=None,
        reason=reason or f"rolled back from v{current} to v{previous}",
        metrics=metrics or {},
        window=window or {},
        shadow=shadow,
        automatic=automatic,
    )
    stamp = iso(decision.at)
    watched = shadows.current_shadow(settings)
    if watched is not None:
        shadows.end(settings, watched, "ended", f"v{current} was rolled back to v{previous}")
        decision.shadow = watched.describe()
    registry.set_champion(settings, previous)
    registry.delete_alias(settings, registry.PREVIOUS_CHAMPION_ALIAS)
    if current is not None:
        registry.tag_version(
            settings,
            current,
            {
                "replaced_by": previous,
                "replaced_at": stamp,
                "rolled_back_at": stamp,
                "rollback.reason": decision.reason[:4000],
                "rollback.automatic": str(automatic).lower(),
            },
        )
    registry.tag_version(
        settings, previous, {"replaced_by": None, "replaced_at": None, "restored_at": stamp}
    )
    publish(settings, decision.as_event())
    return decision
