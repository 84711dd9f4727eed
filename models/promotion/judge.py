"""The judge of a shadow: reads the labelled predictions the retrain loop reads anyway, keeps the
evidence about the shadow the registry names, and acts when :func:`~models.promotion.shadow.
judge` says so: promote the challenger, refuse it, roll the new champion back, or keep it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from models import registry
from models.promotion import shadow as shadows
from models.promotion.events import (
    CONFIRMED,
    REFUSED,
    Decision,
    Publisher,
    finite,
    publish_event,
)
from models.promotion.moves import promote, rollback
from parivision.settings import Settings

# The decisions a judge makes, as the retrain loop's metrics count them.
OUTCOMES = {
    shadows.PROMOTE: "promoted",
    shadows.REFUSE: "refused_live",
    shadows.ROLL_BACK: "rolled_back",
    shadows.CONFIRM: "confirmed",
}


class ShadowJudge:
    """Follows the shadow the registry names and decides it on the store's evidence.

    Args:
        settings: the registry, the model and the rule's settings (``shadow_*``,
            ``rollback_margin``).
        db: the deployment's MongoDB database (for the evidence so far when a shadow is first
            seen, after a restart say).
        publish: sends the decisions' events (default to ``models.events``).
        on_decision: told of each decision and of the shadow it judged (the loop counts them,
            logs them, alerts, and records the verdict on the retrain that trained it).
        on_progress: told of the evidence after every poll (the loop's gauges).
    """

    def __init__(
        self,
        settings: Settings,
        db,
        *,
        publish: Publisher | None = None,
        on_decision: Callable[[str, Decision, dict[str, Any]], None] | None = None,
        on_progress: Callable[[shadows.Shadow | None, shadows.Evidence], None] | None = None,
    ) -> None:
        self.settings, self.db = settings, db
        self.publish = publish or publish_event
        self.on_decision = on_decision or (lambda _action, _decision, _shadow: None)
        self.on_progress = on_progress or (lambda _shadow, _evidence: None)
        self.shadow: shadows.Shadow | None = None
        self.evidence = shadows.Evidence()

    def poll(self, fresh: Iterable[Mapping[str, Any]] = ()) -> Decision | None:
        """Take the labelled predictions read since the last poll; decide if it is time.

        Raises:
            MlflowException: the registry did not answer (the loop tries again next poll).
        """
        current = shadows.current_shadow(self.settings)
        if current is None:
            self.shadow, self.evidence = None, shadows.Evidence()
            self.on_progress(None, self.evidence)
            return None
        if self.shadow is None or current.key != self.shadow.key:
            # A shadow first seen here (new, or this loop restarted): what the store holds so far.
            self.shadow, self.evidence = current, shadows.Evidence()
            fresh = shadows.labelled_since(self.db, current)
        champion = registry.champion_version(self.settings)
        if champion != current.champion:
            return self._champion_moved(current, champion)
        # Shot by shot, so the verdict falls on the shot that reached it.
        judgement = shadows.observe(self.evidence, fresh, current, self.settings)
        self.on_progress(current, self.evidence)
        if judgement is None:
            return None
        decision = self._act(current, judgement)
        self.shadow, self.evidence = None, shadows.Evidence()
        # The judged shadow, not the decision's: a promotion's decision names the watch it starts.
        self.on_decision(judgement.action, decision, current.describe())
        return decision

    def _champion_moved(self, current: shadows.Shadow, champion: str | None) -> Decision | None:
        """The champion the shadow is compared with is not the champion any more (a person
        promoted or rolled back another): a challenger's shadow is refused, a watch ends."""
        reason = (
            f"the champion changed from v{current.champion} to v{champion} during the shadow "
            f"of v{current.version}"
        )
        shadows.end(self.settings, current, "ended", reason, self.evidence)
        self.shadow, self.evidence = None, shadows.Evidence()
        if current.role != shadows.CHALLENGER:
            return None
        decision = self._decision(REFUSED, current, champion, reason)
        self.publish(self.settings, decision.as_event())
        self.on_decision(shadows.REFUSE, decision, current.describe())
        return decision

    def _act(self, current: shadows.Shadow, judgement: shadows.Judgement) -> Decision:
        settings, evidence, reason = self.settings, self.evidence, judgement.reason
        metrics = _metrics(evidence)
        if judgement.action == shadows.PROMOTE:
            shadows.end(settings, current, "promoted", reason, evidence)
            return promote(
                settings,
                current.version,
                reason=reason,
                how="shadow",
                metrics=metrics,
                window={"shadow": current.describe(), "shots": evidence.n},
                automatic=True,
                publish=self.publish,
                tags={"challenge.decision": "promoted"},
            )
        if judgement.action == shadows.ROLL_BACK:
            shadows.end(settings, current, "restored", reason, evidence)
            # The watch names the version to go back to, whatever the aliases say now.
            registry.set_alias(settings, registry.PREVIOUS_CHAMPION_ALIAS, current.version)
            return rollback(
                settings,
                reason=reason,
                automatic=True,
                metrics=metrics,
                window={"shots": evidence.n},
                shadow=current.describe(),
                publish=self.publish,
            )
        if judgement.action == shadows.REFUSE:
            shadows.end(settings, current, "refused", reason, evidence)
            registry.tag_version(
                settings,
                current.version,
                {"challenge.decision": "refused", "challenge.reason": reason[:4000]},
            )
            decision = self._decision(REFUSED, current, current.champion, reason, metrics)
        else:
            shadows.end(settings, current, "confirmed", reason, evidence)
            decision = self._decision(CONFIRMED, current, current.champion, reason, metrics)
        self.publish(settings, decision.as_event())
        return decision

    def _decision(
        self,
        event: str,
        current: shadows.Shadow,
        champion: str | None,
        reason: str,
        metrics: dict[str, dict[str, float]] | None = None,
    ) -> Decision:
        watch = current.role == shadows.WATCH
        return Decision(
            event,
            model=self.settings.registered_model(),
            version=champion,
            previous_version=current.version if watch else champion,
            challenger_version=None if watch else current.version,
            reason=reason,
            metrics=metrics or {},
            window={"shots": self.evidence.n},
            shadow=current.describe(),
            automatic=True,
        )


def _metrics(evidence: shadows.Evidence) -> dict[str, dict[str, float]]:
    return {
        side: {name: finite(value) for name, value in values.items()}
        for side, values in evidence.metrics().items()
    }
